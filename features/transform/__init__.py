"""Pure transforms: DataFrame -> DataFrame and Column -> Column. They never read, write or look up config."""
