"""Checking a response against the OpenAPI document's schema for it."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from referencing import Registry, Resource


def response_validator(doc: dict, path: str, status: str,
                       method: str = "get") -> Draft202012Validator:
    """A validator of the JSON response ``status`` of ``method`` ``path`` in the OpenAPI
    document ``doc``, its $refs resolved within the document."""
    registry = Registry().with_resource("urn:api", Resource.from_contents(
        {**doc, "$schema": "https://json-schema.org/draft/2020-12/schema"}))
    pointer = ("urn:api#/paths/" + path.replace("~", "~0").replace("/", "~1")
               + f"/{method}/responses/{status}/content/application~1json/schema")
    return Draft202012Validator({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                 "$ref": pointer}, registry=registry)
