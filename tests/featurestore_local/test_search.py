"""``Search`` over FeatureMetadata (and FeatureGroup) against a real local server, with boto3.

A small catalog is built at fixed times; every expected result below is typed by hand from it:

| group (created)               | feature     | type       | modified | description                   | parameters                |
|-------------------------------|-------------|------------|----------|-------------------------------|---------------------------|
| customer_orders (T0)          | customer_id | String     | T0       |                               |                           |
|                               | event_time  | String     | T0       |                               |                           |
|                               | orders      | Integral   | T0+200   | Completed orders in 30 days   | owner=team-orders, window=30d |
|                               | spend       | Fractional | T0+200   | Order amount sum              | owner=team-orders, unit=EUR |
|                               | segment     | String     | T0       |                               |                           |
| web_sessions (T0+100)         | customer_id | String     | T0+100   |                               |                           |
|                               | event_time  | String     | T0+100   |                               |                           |
|                               | clicks      | Integral   | T0+300   | Clicks per session            | owner=team-web            |
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from featurestore_local import LocalFeatureStore

from tests.featurestore_local.test_runtime import FEATURES, FakeClock, error_of

T0 = datetime(2026, 10, 31, tzinfo=UTC)
ORDERS = "customer_orders"
WEB = "web_sessions"
ALL = {
    (ORDERS, "customer_id"),
    (ORDERS, "event_time"),
    (ORDERS, "orders"),
    (ORDERS, "spend"),
    (ORDERS, "segment"),
    (WEB, "customer_id"),
    (WEB, "event_time"),
    (WEB, "clicks"),
}
DESCRIBED = {(ORDERS, "orders"), (ORDERS, "spend"), (WEB, "clicks")}


def at(seconds: int) -> str:
    """The filter timestamp format the Filter documentation gives: YYYY-mm-dd'T'HH:MM:SS."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture
def clock() -> FakeClock:
    fake = FakeClock()
    fake.now = T0.timestamp()
    return fake


@pytest.fixture
def sm(store: LocalFeatureStore, clock: FakeClock) -> Any:
    """A plain boto3 client, as users create it, over the catalog in the module docstring."""
    client = boto3.client(
        "sagemaker",
        endpoint_url=store.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )

    def create(name: str, features: list[dict[str, str]]) -> None:
        client.create_feature_group(
            FeatureGroupName=name,
            RecordIdentifierFeatureName="customer_id",
            EventTimeFeatureName="event_time",
            FeatureDefinitions=features,
            OnlineStoreConfig={"EnableOnlineStore": True},
            Description=f"the {name} group",
        )

    def describe(feature: str, group: str, text: str, **parameters: str) -> None:
        client.update_feature_metadata(
            FeatureGroupName=group,
            FeatureName=feature,
            Description=text,
            ParameterAdditions=[{"Key": key, "Value": value} for key, value in parameters.items()],
        )

    create(ORDERS, FEATURES)
    clock.advance(100)
    create(WEB, [*FEATURES[:2], {"FeatureName": "clicks", "FeatureType": "Integral"}])
    clock.advance(100)
    describe("orders", ORDERS, "Completed orders in 30 days", owner="team-orders", window="30d")
    describe("spend", ORDERS, "Order amount sum", owner="team-orders", unit="EUR")
    clock.advance(100)
    describe("clicks", WEB, "Clicks per session", owner="team-web")
    return client


def found(sm: Any, **request: Any) -> list[tuple[str, str]]:
    results = sm.search(Resource="FeatureMetadata", **request)["Results"]
    return [(r["FeatureMetadata"]["FeatureGroupName"], r["FeatureMetadata"]["FeatureName"]) for r in results]


def matching(sm: Any, *filters: dict[str, str], **expression: Any) -> set[tuple[str, str]]:
    rows = found(
        sm, SearchExpression={"Filters": list(filters), **expression} if filters else expression, MaxResults=100
    )
    assert len(rows) == len(set(rows))
    return set(rows)


def test_the_documented_call_works_unchanged(sm: Any) -> None:
    response = sm.search(
        Resource="FeatureMetadata",
        SearchExpression={"Filters": [{"Name": "FeatureGroupName", "Operator": "Contains", "Value": "customer"}]},
    )
    assert {
        (r["FeatureMetadata"]["FeatureGroupName"], r["FeatureMetadata"]["FeatureName"]) for r in response["Results"]
    } == {
        (ORDERS, "customer_id"),
        (ORDERS, "event_time"),
        (ORDERS, "orders"),
        (ORDERS, "spend"),
        (ORDERS, "segment"),
    }
    assert "NextToken" not in response
    assert response["TotalHits"] == {"Value": 5, "Relation": "EqualTo"}
    [orders] = [r["FeatureMetadata"] for r in response["Results"] if r["FeatureMetadata"]["FeatureName"] == "orders"]
    assert orders == {
        "FeatureGroupArn": f"arn:aws:sagemaker:us-east-1:000000000000:feature-group/{ORDERS}",
        "FeatureGroupName": ORDERS,
        "FeatureName": "orders",
        "FeatureType": "Integral",
        "CreationTime": T0,
        "LastModifiedTime": T0 + timedelta(seconds=200),
        "Description": "Completed orders in 30 days",
        "Parameters": [{"Key": "owner", "Value": "team-orders"}, {"Key": "window", "Value": "30d"}],
    }


@pytest.mark.parametrize(
    ("search_filter", "expected"),
    [
        (
            {"Name": "FeatureName", "Operator": "Equals", "Value": "customer_id"},
            {(ORDERS, "customer_id"), (WEB, "customer_id")},
        ),
        ({"Name": "FeatureName", "Value": "clicks"}, {(WEB, "clicks")}),  # no Operator: Equals
        ({"Name": "FeatureType", "Operator": "NotEquals", "Value": "String"}, DESCRIBED),
        ({"Name": "FeatureType", "Operator": "In", "Value": "Integral, Fractional"}, DESCRIBED),
        (
            {"Name": "FeatureGroupName", "Operator": "In", "Value": WEB},
            {(WEB, "customer_id"), (WEB, "event_time"), (WEB, "clicks")},
        ),
        ({"Name": "Description", "Operator": "Exists"}, DESCRIBED),
        ({"Name": "Description", "Operator": "NotExists"}, ALL - DESCRIBED),
        # Contains is case-sensitive here: "Completed orders in 30 days" does not contain "Order".
        ({"Name": "Description", "Operator": "Contains", "Value": "Order"}, {(ORDERS, "spend")}),
        ({"Name": "Description", "Operator": "Contains", "Value": "orders"}, {(ORDERS, "orders")}),
        ({"Name": "Description", "Operator": "Contains", "Value": "session"}, {(WEB, "clicks")}),
        (
            {"Name": "Parameters.owner", "Operator": "Equals", "Value": "team-orders"},
            {(ORDERS, "orders"), (ORDERS, "spend")},
        ),
        (
            {"Name": "Parameters.owner", "Operator": "NotEquals", "Value": "team-orders"},
            ALL - {(ORDERS, "orders"), (ORDERS, "spend")},
        ),
        ({"Name": "Parameters.unit", "Operator": "Exists"}, {(ORDERS, "spend")}),
        ({"Name": "Parameters.unit", "Operator": "NotExists"}, ALL - {(ORDERS, "spend")}),
        ({"Name": "Parameters.window", "Operator": "Contains", "Value": "30"}, {(ORDERS, "orders")}),
        ({"Name": "Parameters.owner", "Operator": "In", "Value": "team-web,team-none"}, {(WEB, "clicks")}),
        ({"Name": "AllParameters", "Operator": "Equals", "Value": "EUR"}, {(ORDERS, "spend")}),
        ({"Name": "AllParameters", "Operator": "Contains", "Value": "team"}, DESCRIBED),
        ({"Name": "LastModifiedTime", "Operator": "GreaterThan", "Value": at(200)}, {(WEB, "clicks")}),
        ({"Name": "LastModifiedTime", "Operator": "GreaterThanOrEqualTo", "Value": at(200)}, DESCRIBED),
        ({"Name": "LastModifiedTime", "Operator": "LessThan", "Value": at(200)}, ALL - DESCRIBED),
        (
            {"Name": "LastModifiedTime", "Operator": "LessThanOrEqualTo", "Value": at(0)},
            {(ORDERS, "customer_id"), (ORDERS, "event_time"), (ORDERS, "segment")},
        ),
        (
            {"Name": "CreationTime", "Operator": "Equals", "Value": at(100)},
            {(WEB, "customer_id"), (WEB, "event_time"), (WEB, "clicks")},
        ),
        ({"Name": "CreationTime", "Operator": "NotEquals", "Value": at(100)}, {(g, f) for g, f in ALL if g == ORDERS}),
        (
            {"Name": "CreationTime", "Operator": "LessThan", "Value": "2026-10-31T01:01:40+01:00"},
            {(g, f) for g, f in ALL if g == ORDERS},
        ),
        ({"Name": "FeatureName", "Operator": "Equals", "Value": "nothing"}, set()),
    ],
)
def test_each_operator(sm: Any, search_filter: dict[str, str], expected: set[tuple[str, str]]) -> None:
    assert matching(sm, search_filter) == expected


def test_filters_are_and_unless_the_operator_says_or(sm: Any) -> None:
    group = {"Name": "FeatureGroupName", "Operator": "Equals", "Value": ORDERS}
    text = {"Name": "FeatureType", "Operator": "Equals", "Value": "String"}
    strings = {(ORDERS, "customer_id"), (ORDERS, "event_time"), (ORDERS, "segment")}
    assert matching(sm, group, text) == strings
    assert matching(sm, group, text, Operator="And") == strings
    assert matching(sm, group, text, Operator="Or") == {(g, f) for g, f in ALL if g == ORDERS} | {
        (WEB, "customer_id"),
        (WEB, "event_time"),
    }


def test_sub_expressions(sm: Any) -> None:
    either = {
        "SubExpressions": [
            {"Filters": [{"Name": "FeatureName", "Operator": "Equals", "Value": "clicks"}]},
            {"Filters": [{"Name": "Parameters.unit", "Operator": "Equals", "Value": "EUR"}]},
        ],
        "Operator": "Or",
    }
    assert matching(sm, **either) == {(WEB, "clicks"), (ORDERS, "spend")}
    # A filter And-ed with a nested Or.
    narrowed = {
        "Filters": [{"Name": "FeatureGroupName", "Operator": "Equals", "Value": WEB}],
        "SubExpressions": [either],
    }
    assert matching(sm, **narrowed) == {(WEB, "clicks")}


def test_nested_filters_match_within_one_parameter(sm: Any) -> None:
    def nested(key: str, value: str) -> dict[str, Any]:
        return {
            "NestedFilters": [
                {
                    "NestedPropertyName": "Parameters",
                    "Filters": [
                        {"Name": "Parameters.Key", "Operator": "Equals", "Value": key},
                        {"Name": "Parameters.Value", "Operator": "Equals", "Value": value},
                    ],
                }
            ]
        }

    assert matching(sm, **nested("owner", "team-web")) == {(WEB, "clicks")}
    assert matching(sm, **nested("owner", "team-orders")) == {(ORDERS, "orders"), (ORDERS, "spend")}
    # spend has unit=EUR and owner=team-orders, but no single parameter unit=team-orders.
    assert matching(sm, **nested("unit", "team-orders")) == set()


def test_sort_orders(sm: Any) -> None:
    by_name = [
        (WEB, "clicks"),
        (ORDERS, "customer_id"),
        (WEB, "customer_id"),
        (ORDERS, "event_time"),
        (WEB, "event_time"),
        (ORDERS, "orders"),
        (ORDERS, "segment"),
        (ORDERS, "spend"),
    ]
    assert found(sm, SortBy="FeatureName", SortOrder="Ascending", MaxResults=100) == by_name
    # Default: LastModifiedTime, Descending; ties by group then feature name.
    assert found(sm, MaxResults=100) == [
        (WEB, "clicks"),
        (ORDERS, "orders"),
        (ORDERS, "spend"),
        (WEB, "customer_id"),
        (WEB, "event_time"),
        (ORDERS, "customer_id"),
        (ORDERS, "event_time"),
        (ORDERS, "segment"),
    ]
    # Features without a Description come last either way.
    assert found(sm, SortBy="Description", SortOrder="Ascending", MaxResults=4) == [
        (WEB, "clicks"),
        (ORDERS, "orders"),
        (ORDERS, "spend"),
        (ORDERS, "customer_id"),
    ]
    assert found(sm, SortBy="Description", SortOrder="Descending", MaxResults=4) == [
        (ORDERS, "spend"),
        (ORDERS, "orders"),
        (WEB, "clicks"),
        (ORDERS, "customer_id"),
    ]


def test_paging(sm: Any) -> None:
    request: dict[str, Any] = {"SortBy": "FeatureName", "SortOrder": "Ascending", "MaxResults": 3}
    pages = []
    response = sm.search(Resource="FeatureMetadata", **request)
    pages.append(response)
    while "NextToken" in response:
        response = sm.search(Resource="FeatureMetadata", NextToken=response["NextToken"], **request)
        pages.append(response)
    assert [len(page["Results"]) for page in pages] == [3, 3, 2]
    assert all(page["TotalHits"]["Value"] == 8 for page in pages)
    names = [r["FeatureMetadata"]["FeatureName"] for page in pages for r in page["Results"]]
    assert names == ["clicks", "customer_id", "customer_id", "event_time", "event_time", "orders", "segment", "spend"]

    paginated = sm.get_paginator("search").paginate(
        Resource="FeatureMetadata", SortBy="FeatureName", SortOrder="Ascending", PaginationConfig={"PageSize": 5}
    )
    assert [r["FeatureMetadata"]["FeatureName"] for page in paginated for r in page["Results"]] == names

    # A token belongs to its query.
    with pytest.raises(ClientError) as excinfo:
        sm.search(Resource="FeatureMetadata", NextToken=pages[0]["NextToken"], SortBy="FeatureName", MaxResults=3)
    assert error_of(excinfo)[0] == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        sm.search(Resource="FeatureMetadata", NextToken="not-a-token")
    assert error_of(excinfo)[0] == "ValidationException"


def _filters(*items: dict[str, str]) -> dict[str, Any]:
    return {"SearchExpression": {"Filters": list(items)}}


@pytest.mark.parametrize(
    ("request_members", "fragment"),
    [
        ({"Resource": "TrainingJob"}, "searches FeatureMetadata and FeatureGroup only"),
        ({"Resource": "Bogus"}, "Resource must be one of"),
        (
            {"Resource": "FeatureMetadata", **_filters({"Name": "Owner", "Operator": "Equals", "Value": "x"})},
            "Owner is not a searchable property of FeatureMetadata",
        ),
        (
            {"Resource": "FeatureMetadata", **_filters({"Name": "Parameters.", "Operator": "Exists"})},
            "not a searchable property",
        ),
        (
            {"Resource": "FeatureMetadata", **_filters({"Name": "FeatureName", "Operator": "Like", "Value": "x"})},
            "Operator must be one of",
        ),
        (
            {
                "Resource": "FeatureMetadata",
                **_filters({"Name": "FeatureName", "Operator": "GreaterThan", "Value": "a"}),
            },
            "not supported for text properties",
        ),
        (
            {
                "Resource": "FeatureMetadata",
                **_filters({"Name": "CreationTime", "Operator": "Contains", "Value": "2026"}),
            },
            "only supported for text properties",
        ),
        (
            {
                "Resource": "FeatureMetadata",
                **_filters({"Name": "CreationTime", "Operator": "GreaterThan", "Value": "yesterday"}),
            },
            "Invalid timestamp",
        ),
        ({"Resource": "FeatureMetadata", **_filters({"Name": "FeatureName"})}, "needs an Operator or a Value"),
        (
            {"Resource": "FeatureMetadata", **_filters({"Name": "FeatureName", "Operator": "Equals"})},
            "needs a non-empty string Value",
        ),
        (
            {
                "Resource": "FeatureMetadata",
                **_filters(
                    {"Name": "FeatureName", "Operator": "Contains", "Value": "a"},
                    {"Name": "Description", "Operator": "Contains", "Value": "b"},
                ),
            },
            "'CONTAINS' operator usage limit of 1 exceeded.",
        ),
        (
            {"Resource": "FeatureMetadata", "SearchExpression": {}},
            "at least one subexpression, filter, or nested filter",
        ),
        (
            {
                "Resource": "FeatureMetadata",
                "SearchExpression": {"Filters": [{"Name": "FeatureName", "Value": "x"}] * 21},
            },
            "1 to 20",
        ),
        (
            {
                "Resource": "FeatureMetadata",
                "SearchExpression": {"SubExpressions": [{"Filters": [{"Name": "FeatureName", "Value": "x"}] * 20}] * 3},
            },
            "at most 50",
        ),
        (
            {
                "Resource": "FeatureMetadata",
                "SearchExpression": {"Filters": [{"Name": "FeatureName", "Value": "x"}], "Operator": "Xor"},
            },
            "And or Or",
        ),
        (
            {
                "Resource": "FeatureMetadata",
                "SearchExpression": {
                    "NestedFilters": [{"NestedPropertyName": "Tags", "Filters": [{"Name": "Tags.Key", "Value": "x"}]}]
                },
            },
            "not a list property of FeatureMetadata",
        ),
        (
            {
                "Resource": "FeatureMetadata",
                "SearchExpression": {
                    "NestedFilters": [
                        {"NestedPropertyName": "Parameters", "Filters": [{"Name": "FeatureName", "Value": "x"}]}
                    ]
                },
            },
            "not a property of Parameters",
        ),
        ({"Resource": "FeatureMetadata", "SortBy": "Popularity"}, "SortBy 'Popularity' is not a sortable property"),
        ({"Resource": "FeatureMetadata", "SortOrder": "Sideways"}, "SortOrder must be one of"),
        ({"Resource": "FeatureMetadata", "MaxResults": 101}, "MaxResults must be an integer between 1 and 100"),
        (
            {"Resource": "FeatureGroup", **_filters({"Name": "Tags.team", "Operator": "Equals", "Value": "x"})},
            "does not store tags",
        ),
    ],
)
def test_bad_requests_are_validation_exceptions(sm: Any, request_members: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.search(**request_members)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert fragment in message


def test_feature_group_search(sm: Any) -> None:
    response = sm.search(
        Resource="FeatureGroup",
        SearchExpression={"Filters": [{"Name": "FeatureGroupName", "Operator": "Contains", "Value": "customer"}]},
    )
    [result] = response["Results"]
    group = result["FeatureGroup"]
    assert group["FeatureGroupName"] == ORDERS
    assert group["FeatureGroupArn"] == f"arn:aws:sagemaker:us-east-1:000000000000:feature-group/{ORDERS}"
    assert group["Description"] == f"the {ORDERS} group"
    assert group["CreationTime"] == T0
    assert group["FeatureDefinitions"] == FEATURES
    assert group["OnlineStoreConfig"] == {"EnableOnlineStore": True}

    def groups(**request: Any) -> list[str]:
        return [r["FeatureGroup"]["FeatureGroupName"] for r in sm.search(Resource="FeatureGroup", **request)["Results"]]

    has_clicks = {
        "NestedFilters": [
            {
                "NestedPropertyName": "FeatureDefinitions",
                "Filters": [{"Name": "FeatureDefinitions.FeatureName", "Operator": "Equals", "Value": "clicks"}],
            }
        ]
    }
    assert groups(SearchExpression=has_clicks) == [WEB]
    assert groups(SortBy="CreationTime", SortOrder="Ascending") == [ORDERS, WEB]
    assert groups(SortBy="CreationTime") == [WEB, ORDERS]
    created_late = {"Filters": [{"Name": "CreationTime", "Operator": "GreaterThanOrEqualTo", "Value": at(50)}]}
    assert groups(SearchExpression=created_late) == [WEB]


def test_cross_account_search_finds_nothing_locally(sm: Any) -> None:
    assert sm.search(Resource="FeatureMetadata", CrossAccountFilterOption="CrossAccount")["Results"] == []
    assert (
        len(sm.search(Resource="FeatureMetadata", CrossAccountFilterOption="SameAccount", MaxResults=100)["Results"])
        == 8
    )


def test_default_page_is_ten(sm: Any) -> None:
    extra = [{"FeatureName": f"f{index}", "FeatureType": "String"} for index in range(5)]
    sm.create_feature_group(
        FeatureGroupName="wide",
        RecordIdentifierFeatureName="customer_id",
        EventTimeFeatureName="event_time",
        FeatureDefinitions=[*FEATURES[:2], *extra],
        OnlineStoreConfig={"EnableOnlineStore": True},
    )
    response = sm.search(Resource="FeatureMetadata")
    assert len(response["Results"]) == 10 and "NextToken" in response
    assert response["TotalHits"]["Value"] == 15


def test_ties_are_ordered_by_group_then_feature_not_by_creation(sm: Any, clock: FakeClock) -> None:
    clock.advance(100)
    sm.create_feature_group(
        FeatureGroupName="aardvark",
        RecordIdentifierFeatureName="customer_id",
        EventTimeFeatureName="event_time",
        FeatureDefinitions=FEATURES[:2],
        OnlineStoreConfig={"EnableOnlineStore": True},
    )
    ids = {"Filters": [{"Name": "FeatureName", "Operator": "Equals", "Value": "customer_id"}]}
    assert found(sm, SearchExpression=ids, SortBy="FeatureName", SortOrder="Ascending") == [
        ("aardvark", "customer_id"),
        (ORDERS, "customer_id"),
        (WEB, "customer_id"),
    ]
    assert found(sm, SearchExpression=ids, SortBy="FeatureType", SortOrder="Descending") == [
        ("aardvark", "customer_id"),
        (ORDERS, "customer_id"),
        (WEB, "customer_id"),
    ]
