"""Pagination every API list shares: pages of 100 rows (page_size up to 1000)."""

from rest_framework.pagination import PageNumberPagination
from rest_framework_gis.pagination import GeoJsonPagination


class Pagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class FeaturePagination(GeoJsonPagination):
    """A page of GeoJSON: a FeatureCollection with count, next and previous."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_paginated_response_schema(self, schema):
        # drf-spectacular hands a GeoFeatureModelSerializer list over as a reference to a
        # whole FeatureCollection component; the stock schema would nest that collection
        # under "features". A page is that collection plus count, next and previous.
        links = PageNumberPagination.get_paginated_response_schema(self, schema)
        del links["properties"]["results"]
        links["required"] = ["count"]
        if "$ref" in schema:
            return {"allOf": [schema, links]}
        links["properties"]["type"] = {"type": "string", "enum": ["FeatureCollection"]}
        links["properties"]["features"] = schema
        links["required"] = ["type", "count", "features"]
        return links
