"""/openapi.json validates, lists every JSON route the app serves, and its examples match its schemas."""
from __future__ import annotations

import re

import jsonschema
from openapi_spec_validator import validate


def test_document_validates(client):
    doc = client.get("/openapi.json").get_json()
    validate(doc)


def test_every_json_route_is_documented(app, client):
    doc = client.get("/openapi.json").get_json()
    documented = {re.sub(r"\{(\w+)\}", r"<\1>", p): set(ops) - {"parameters"} for p, ops in doc["paths"].items()}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule).replace("<article_id>", "<id>")
        if not (path.startswith("/api/") or path in ("/healthz", "/openapi.json")) or path == "/api/<_rest>":
            continue
        methods = {m.lower() for m in rule.methods} - {"head", "options"}
        assert path in documented, f"{path} is not in /openapi.json"
        assert methods <= documented[path], f"{path}: {methods - documented[path]} not documented"


def _resolve(doc, schema):
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return doc["components"]["schemas"][name]
    return schema


def test_examples_validate_against_their_schemas(client):
    doc = client.get("/openapi.json").get_json()
    checked = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            bodies = []
            if "requestBody" in op:
                bodies += list(op["requestBody"]["content"].values())
            for resp in op["responses"].values():
                bodies += list(resp.get("content", {}).values())
            for media in bodies:
                if "example" in media:
                    jsonschema.validate(media["example"], _resolve(doc, media["schema"]))
                    checked += 1
    error = doc["components"]["schemas"]["Error"]
    jsonschema.validate(error["example"], error)
    assert checked >= 8


def test_live_answers_match_the_documented_shapes(client):
    doc = client.get("/openapi.json").get_json()
    related = doc["paths"]["/api/related"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(client.get("/api/related?id=sample-sheinbaum&min_score=0").get_json(), related)
    err = client.get("/api/related?k=0&id=x").get_json()
    jsonschema.validate(err, doc["components"]["schemas"]["Error"])
