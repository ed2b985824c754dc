"""The OpenAPI 3 document of the JSON API, written by hand; a test checks it against the routes."""
from __future__ import annotations

from recommender import SETTINGS, setting_bounds

ERROR = {"$ref": "#/components/schemas/Error"}


def _err(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


ERRORS = {
    "400": _err("Bad input; `field` names what is wrong"),
    "404": _err("Unknown article or route"),
    "413": _err("Request body too large"),
    "415": _err("Not JSON"),
    "429": _err("Rate limited (NEWSREC_TEXT_RATE_LIMIT for requests with a text, NEWSREC_RATE_LIMIT for all); "
                "the Retry-After header gives the seconds to wait"),
    "500": _err("Internal error (the request id is in the server log)"),
    "503": _err("No index loaded"),
}

ARTICLE_IN = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 512},
        "title": {"type": "string"},
        "body": {"type": "string", "description": "Scraped text; cleaned before use"},
        "text": {"type": "string", "description": "Alias of body"},
        "html": {"type": "string", "description": "A page; its main text is extracted and cleaned"},
        "url": {"type": "string", "maxLength": 2048},
        "published": {"type": "string", "description": "ISO date or datetime"},
        "source": {"type": "string", "maxLength": 2048},
        "section": {"type": "string", "maxLength": 2048},
        "lang": {"type": "string", "maxLength": 2048},
        "image": {"type": "string", "maxLength": 2048},
    },
}


def _number(setting: str) -> dict:
    """A per-request number's schema: the range of the setting it overrides (recommender.config.setting_bounds)."""
    lo, hi = setting_bounds(setting)
    return {"type": "number", "minimum": lo, "maximum": hi}


RELATED_PARAMS = [
    ("k", {"type": "integer", "minimum": 1, "maximum": 50}, "How many stories"),
    ("source", {"type": "string"}, "Only these sources (comma-separated)"),
    ("exclude_source", {"type": "string"}, "Not these sources (comma-separated)"),
    ("section", {"type": "string"}, "Only these sections (comma-separated)"),
    ("lang", {"type": "string"}, "Only these languages (comma-separated); by default the query article's own"),
    ("cross_lang", {"type": "string", "enum": ["0", "1"]},
     "1: stories in every language (by default a list keeps to the query article's language when it is known)"),
    ("exclude", {"type": "string"}, "Article ids to leave out (comma-separated)"),
    ("date_from", {"type": "string", "format": "date"}, "Earliest publication date"),
    ("date_to", {"type": "string", "format": "date"}, "Latest publication date"),
    ("half_life_days", _number("half_life_days"), "Recency half-life; 0 is off"),
    ("mmr_lambda", _number("mmr_lambda"), "Relevance vs diversity"),
    ("story_context", _number("story_context"),
     "Weight of story centroids in relevance; 0 compares the two articles alone"),
    ("feedback", _number("feedback"),
     "Share of the nearest other stories in the query (pseudo-relevance feedback); 0 ranks by the query alone"),
    ("min_score", _number("min_score"), "Nothing under this score is shown"),
    ("lexical", _number("lexical"),
     "Weight of the lexical (BM25) ranking in the list's order (reciprocal rank fusion); 0 orders by the semantic score"),
    ("collapse", {"type": "string", "enum": list(next(s.choices for s in SETTINGS if s.name == "collapse"))},
     "Group representative"),
    ("explain", {"type": "string", "enum": ["0", "1"]}, "Add the query article's cut furniture"),
]

RELATED_EXAMPLE = {
    "query": {"id": "wn736", "title": "President of China lunches with Brazilian President", "indexed": True,
              "lang": "en", "low_confidence": False},
    "items": [{
        "id": "wn1234", "title": "Brazilian President meets President of Colombia", "url": "https://en.wikinews.org/wiki/X",
        "published": "2005-01-20", "source": "Wikinews", "section": "politics", "lang": "", "image": "",
        "score": 0.58, "similarity": 0.5, "recency": 1.0, "story_similarity": 0.52,
        "neighbourhood_similarity": 0.61,
        "p_related": 0.93, "p_retelling": 0.04, "relation": "related", "lexical_rank": 3,
        "reason": "similar text (cosine 0.50); shares distinctive words (lexical rank 3)", "group_size": 1,
        "pinned": False, "ticket": "3f9c2a41d07be85c1e2a",
    }],
    "snapshot": "20261124T010025882899Z-0d6637",
    "params": {"k": 5, "half_life_days": 0.0, "mmr_lambda": 1.0, "story_context": 0.6, "feedback": 0.5,
               "min_score": 0.25,
               "collapse": "canonical", "lang": ["en"], "cross_lang": False, "lexical": 1.0},
}


def _query(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _json_body(schema: dict, example: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}


def _ok(schema: dict, example: dict | None = None, description: str = "OK") -> dict:
    content = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {"application/json": content}}


_CHOSEN = {"type": "array", "items": {"type": "object", "required": ["id", "title", "gone"], "properties": {
    "id": {"type": "string"}, "title": {"type": ["string", "null"]},
    "gone": {"type": "boolean", "description": "deleted from the index since it was chosen: lists skip it"}}}}
CHOICES_EXAMPLE = {"id": "sample-sheinbaum", "title": "Sheinbaum rejects US military action",
                   "pins": [{"id": "wn736", "title": "Mexico's Senate approves security reform", "gone": False}],
                   "excludes": [{"id": "wn12", "title": None, "gone": True}]}


def document() -> dict:
    choices = {"type": "object", "required": ["id", "pins", "excludes"],
               "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "pins": _CHOSEN, "excludes": _CHOSEN}}
    related_item = {
        "type": "object",
        "required": ["id", "title", "score", "similarity", "recency", "reason"],
        "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "url": {"type": "string"},
            "published": {"type": "string"}, "source": {"type": "string"}, "section": {"type": "string"},
            "lang": {"type": "string"}, "image": {"type": "string"},
            "score": {"type": "number", "description": "closeness of the two stories, moved by the article's neighbourhood "
                                                       "and recency; never above the higher of p_related and similarity"},
            "similarity": {"type": "number"}, "recency": {"type": "number"}, "reason": {"type": "string"},
            "story_similarity": {"type": ["number", "null"],
                                 "description": "cosine between the two stories (centroids mixed with the articles); "
                                                "what `score` weighs, null when story_context is 0"},
            "neighbourhood_similarity": {"type": ["number", "null"],
                                         "description": "cosine to the mean of the query's nearest other stories; "
                                                        "with story_similarity, what `score` weighs (feedback); null when feedback is 0"},
            "group_size": {"type": "integer"},
            "p_related": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                          "description": "the pair judgment: probability that a reader of the query wants this item (docs/pairs.md)"},
            "p_retelling": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                            "description": "the pair judgment: probability that this item tells the query's story again"},
            "relation": {"type": "string", "enum": ["related", "development"],
                         "description": "development: the same story (p_retelling >= 0.5) from the query's own outlet, "
                                        "its next article on it (another outlet's retelling is not listed); related: "
                                        "another story"},
            "lexical_rank": {"type": ["integer", "null"], "minimum": 1,
                             "description": "rank in the BM25 search for the query's distinctive words; null when that search did not find it"},
            "pinned": {"type": "boolean", "description": "an editor's pin for this article (listed first; its score is its cosine)"},
            "ticket": {"type": "string", "description": "what /api/click and /api/view send back for this item: only items a "
                                                         "list served on that page are counted"},
        },
    }
    related = {
        "type": "object", "required": ["query", "items", "snapshot"],
        "properties": {"query": {"type": "object", "properties": {
                           "lang": {"type": ["string", "null"], "description": "the query article's language (detected when not given)"},
                           "low_confidence": {"type": "boolean",
                                              "description": "the model was not trained on that language (a text too short to name its language: the languages it was trained on have less than even odds): scores mean less"}}},
                       "items": {"type": "array", "items": related_item},
                       "snapshot": {"type": "string"}, "params": {"type": "object"},
                       "short": {"type": "boolean", "description": "fewer than k items: see short_reason"},
                       "short_reason": {"type": "string"},
                       "fallback_image": {"type": "string", "description": "the site's image for a story without one (NEWSREC_FALLBACK_IMAGE), when set"},
                       "notes": {"type": "array", "items": {"type": "string"},
                                 "description": "what the answer could not use (an index built without its lexical part)"}},
    }
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    scores = {"type": "object", "properties": {"cosine": {"type": "number"}, "jaccard": {"type": ["number", "null"]},
                                                "containment": {"type": ["number", "null"]},
                                                "coverage": {"type": ["number", "null"], "description": "share of the shorter text's words in 5-word passages the other has (a copy at NEWSREC_NEAR_COVERAGE and above)"},
                                                "p_retelling": {**probability, "description": "the pair judgment: B tells A's story again (same-story at 0.5 and above)"},
                                                "p_related": {**probability, "description": "the pair judgment: a reader of A would want B"},
                                                "days_apart": {"type": ["number", "null"], "description": "days between the two publication times; null when either is unknown (judged on the text alone)"}}}
    explain = {"type": "array", "description": "the features that moved each judgment's odds most",
               "items": {"type": "object", "properties": {"judgment": {"type": "string"}, "feature": {"type": "string"},
                                                          "value": {"type": "number"}, "effect": {"type": "number"}}}}
    related_params = [_query(n, s, d) for n, s, d in RELATED_PARAMS]
    return {
        "openapi": "3.1.0",
        "info": {"title": "newsrec", "version": "0.1.0",
                 "description": "Related stories and near-duplicates for news sites. Every error has the Error shape."},
        "paths": {
            "/healthz": {"get": {"summary": "Health and the live snapshot", "responses": {
                "200": _ok({"type": "object", "properties": {"status": {"type": "string"}, "snapshot": {"type": "string"},
                                                              "count": {"type": "integer"}}}),
                "503": {"description": "No index", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/api/related": {
                "get": {"summary": "Related stories for an indexed article", "parameters": [
                    _query("id", {"type": "string"}, "Article id (or give url)"),
                    _query("url", {"type": "string"}, "Article canonical URL")] + related_params,
                    "responses": {"200": _ok(related, RELATED_EXAMPLE), "304": {"description": "Not modified (ETag)"},
                                  **ERRORS}},
                "post": {"summary": "Related stories for an article given in full (not necessarily indexed)",
                         "requestBody": _json_body({**ARTICLE_IN, "properties": {**ARTICLE_IN["properties"],
                                                                                "k": {"type": "integer"}}},
                                                   {"title": "Mexico rejects US military action", "body": "Mexico's president said no foreign troops would operate on Mexican soil.", "k": 5}),
                         "responses": {"200": _ok(related, RELATED_EXAMPLE), **ERRORS}},
            },
            "/api/duplicates": {"post": {
                "summary": "Indexed articles that duplicate this one (exact, near, same-story)",
                "requestBody": _json_body(ARTICLE_IN, {"title": "A copy", "body": "Hu Jintao had lunch today with Lula."}),
                "responses": {"200": _ok({"type": "object", "required": ["verdict", "matches"], "properties": {
                    "verdict": {"type": "string", "enum": ["exact", "near", "same-story", "unique"]},
                    "matches": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "string"}, "level": {"type": "string"}, "scores": scores,
                        "dup_group": {"type": "string"}, "story_group": {"type": "string"}, "lang": {"type": "string"},
                        "cross_lang": {"type": "boolean", "description": "the match is written in another language"}}}},
                    "lang": {"type": ["string", "null"]}, "low_confidence": {"type": "boolean"},
                    "snapshot": {"type": "string"}, "thresholds": {"type": "object"}}},
                    {"verdict": "near", "matches": [{"id": "wn736", "level": "near", "scores": {"cosine": 0.97, "jaccard": 0.6, "containment": 0.8},
                                                     "dup_group": "wn736", "story_group": "wn736"}], "snapshot": "s", "thresholds": {}}),
                    **ERRORS}}},
            "/api/compare": {"post": {
                "summary": "Similarity of two articles and a duplicate verdict",
                "requestBody": _json_body({"type": "object", "required": ["a", "b"], "properties": {"a": ARTICLE_IN, "b": ARTICLE_IN}},
                                          {"a": {"title": "Storm closes airport", "body": "A storm closed the airport."},
                                           "b": {"title": "Airport shut", "body": "The airport was shut by a storm."}}),
                "responses": {"200": _ok({"type": "object", "required": ["level", "duplicate", "scores"], "properties": {
                    "level": {"type": "string", "enum": ["exact", "near", "same-story", "unrelated"]},
                    "duplicate": {"type": "boolean"}, "same_story": {"type": "boolean"}, "scores": scores,
                    "langs": {"type": "object", "properties": {"a": {"type": ["string", "null"]}, "b": {"type": ["string", "null"]}}},
                    "cross_lang": {"type": "boolean"}, "low_confidence": {"type": "boolean"},
                    "explain": explain, "thresholds": {"type": "object"}}},
                    {"level": "same-story", "duplicate": False, "same_story": True,
                     "scores": {"cosine": 0.8, "jaccard": 0.0, "containment": 0.0}, "thresholds": {}}), **ERRORS}}},
            "/api/articles": {"post": {
                "summary": "Add or replace articles (bearer token)", "security": [{"bearer": []}],
                "requestBody": _json_body({"type": "object", "required": ["articles"], "properties": {
                    "articles": {"type": "array", "items": ARTICLE_IN, "maxItems": 1000}}},
                    {"articles": [{"id": "local-1", "title": "Council expands bus network", "body": "The council voted to add four bus routes."}]}),
                "responses": {"201": _ok({"type": "object"}), "401": _err("Wrong or missing token"),
                              "403": _err("Writes disabled (no token configured)"), **ERRORS}}},
            "/api/articles/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {"summary": "One article with its cleaned body, cut furniture and groups",
                        "responses": {"200": _ok({"type": "object"}), **ERRORS}},
                "delete": {"summary": "Delete an article (bearer token)", "security": [{"bearer": []}],
                           "responses": {"200": _ok({"type": "object"}), "401": _err("Wrong or missing token"),
                                         "403": _err("Writes disabled"), **ERRORS}},
            },
            "/api/articles/{id}/choices": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {"summary": "The editors' pinned and excluded stories for this article's related list (bearer token)",
                        "security": [{"bearer": []}],
                        "responses": {"200": _ok(choices, CHOICES_EXAMPLE), "401": _err("Wrong or missing token"),
                                      "403": _err("Admin disabled (no token configured)"), **ERRORS}},
                "put": {"summary": "Replace the pinned stories (listed first, in this order, counting towards k) and the "
                                   "excluded ones (never listed, nor their copies); checked whole, stored at once, kept "
                                   "across rebuilds (bearer token)",
                        "security": [{"bearer": []}],
                        "requestBody": _json_body({"type": "object", "additionalProperties": False, "properties": {
                            "pins": {"type": "array", "items": {"type": "string", "minLength": 1}},
                            "excludes": {"type": "array", "items": {"type": "string", "minLength": 1}}}},
                            {"pins": ["wn736"], "excludes": ["wn12"]}),
                        "responses": {"200": _ok(choices, CHOICES_EXAMPLE), "401": _err("Wrong or missing token"),
                                      "403": _err("Admin disabled (no token configured)"), **ERRORS}},
                "delete": {"summary": "Clear the article's pins and excludes (bearer token)", "security": [{"bearer": []}],
                           "responses": {"200": _ok(choices), "401": _err("Wrong or missing token"),
                                         "403": _err("Admin disabled (no token configured)"), **ERRORS}},
            },
            "/api/search": {"get": {"summary": "Indexed articles whose title contains the words",
                                    "parameters": [_query("q", {"type": "string", "minLength": 1}, "Words of a title", True),
                                                   _query("limit", {"type": "integer", "minimum": 1, "maximum": 50}, "At most")],
                                    "responses": {"200": _ok({"type": "object"}), **ERRORS}}},
            "/api/groups": {"get": {"summary": "Duplicate or story groups",
                                    "parameters": [_query("kind", {"type": "string", "enum": ["duplicate", "story"]}, "Which groups"),
                                                   _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "At most")],
                                    "responses": {"200": _ok({"type": "object"}), **ERRORS}}},
            "/api/reload": {"post": {"summary": "Swap in the newest snapshot now (bearer token)", "security": [{"bearer": []}],
                                     "responses": {"200": _ok({"type": "object"}), "401": _err("Wrong token"),
                                                   "403": _err("Writes disabled"), **ERRORS}}},
            "/api/click": {"post": {
                "summary": "Count a click on a recommendation (the widget sends it with sendBeacon as text/plain)",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "object", "required": ["to", "ticket"], "properties": {
                        "from": {"type": "string"}, "to": {"type": "string", "minLength": 1},
                        "position": {"type": "integer", "minimum": 0, "maximum": 1000},
                        "ticket": {"type": "string", "description": "the item's ticket from the related list"}}},
                        "example": {"from": "sample-sheinbaum", "to": "wn736", "position": 1, "ticket": "3f9c2a41d07be85c1e2a"}}}},
                "responses": {"204": {"description": "Counted"}, **ERRORS}}},
            "/api/view": {"post": {
                "summary": "Count a related list seen by a reader (the widget's beacon, text/plain like clicks)",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "object", "required": ["items", "tickets"], "properties": {
                        "from": {"type": "string"}, "items": {"type": "array", "minItems": 1, "maxItems": 50,
                                                              "items": {"type": "string", "minLength": 1}},
                        "tickets": {"type": "array", "items": {"type": "string"},
                                    "description": "each item's ticket from the related list, in the same order"}}},
                        "example": {"from": "sample-sheinbaum", "items": ["wn736", "wn740"],
                                    "tickets": ["3f9c2a41d07be85c1e2a", "b41e09c3d2f7a6e85d10"]}}}},
                "responses": {"204": {"description": "Counted"}, **ERRORS}}},
            "/api/stats": {"get": {"summary": "Index stats and click counts", "responses": {"200": _ok({"type": "object"}), **ERRORS}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok({"type": "object"})}}},
        },
        "components": {
            "schemas": {"Error": {
                "type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["status", "code", "message", "field", "request_id"],
                    "properties": {"status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"},
                                   "field": {"type": ["string", "null"]}, "request_id": {"type": "string"}}}},
                "example": {"error": {"status": 400, "code": "bad_request", "message": "'k' must be an integer from 1 to 50",
                                      "field": "k", "request_id": "5f0c2a1b9e3d4c77"}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
