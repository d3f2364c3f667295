"""Checks the server's OpenAPI description and live answers against it.

Reads one JSON object on stdin:
  {"document": <the description>,
   "routes": [[METHOD, PATH], ...],          # the route table
   "answers": [{"method": M, "path": P, "status": N, "body": <JSON>}, ...]}

1. The description validates as OpenAPI 3.1 (openapi-spec-validator).
2. Every route of the table is in `paths` with its method.
3. Every answer is described: the operation of its route has a response for its
   status (or `default`), and the body validates against its JSON schema
   (jsonschema, draft 2020-12) with every described object closed: a field the
   schema does not name fails, as a missing required one does. An object the
   description leaves open (`additionalProperties` set) stays open.

Exits 1 and prints every problem when one is found.
"""

import copy
import json
import sys

import jsonschema
from openapi_spec_validator import validate


def close_objects(node, in_all_of=False):
    """Marks every object schema that names its properties as closed."""
    if isinstance(node, dict):
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not in_all_of
        ):
            node["unevaluatedProperties"] = False
        if "allOf" in node and "additionalProperties" not in node:
            node["unevaluatedProperties"] = False
        for key, value in node.items():
            close_objects(value, in_all_of=(key == "allOf"))
    elif isinstance(node, list):
        for value in node:
            close_objects(value, in_all_of=in_all_of)


def main():
    given = json.load(sys.stdin)
    document = given["document"]
    problems = []

    validate(document)

    paths = document.get("paths", {})
    for method, path in given["routes"]:
        if method.lower() not in paths.get(path, {}):
            problems.append(f"{method} {path}: in the route table, not in the description")

    # Component schemas referenced from allOf are parts of an object, not whole
    # ones: left open so that the whole one can be closed.
    components = copy.deepcopy(document.get("components", {}).get("schemas", {}))
    parts = set()
    for schema in components.values():
        for member in schema.get("allOf", []):
            ref = member.get("$ref", "")
            if ref.startswith("#/components/schemas/"):
                parts.add(ref.rsplit("/", 1)[1])
    for name, schema in components.items():
        if name not in parts:
            close_objects(schema)
    closed = {"components": {"schemas": components}}

    for answer in given["answers"]:
        where = f"{answer['method']} {answer['path']} ({answer['status']})"
        operation = paths.get(answer["route"], {}).get(answer["method"].lower())
        if operation is None:
            # A method or path no route has (405, 404): still the one error shape.
            if answer["status"] < 400:
                problems.append(f"{where}: no operation")
                continue
            content = {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
        else:
            responses = operation.get("responses", {})
            response = responses.get(str(answer["status"]), responses.get("default"))
            if response is None:
                problems.append(f"{where}: status not described")
                continue
            content = response.get("content", {}).get("application/json")
            if content is None or "schema" not in content:
                problems.append(f"{where}: no JSON schema for this answer")
                continue
        schema = copy.deepcopy(content["schema"])
        close_objects(schema)
        schema["components"] = closed["components"]
        validator = jsonschema.Draft202012Validator(schema)
        for error in validator.iter_errors(answer["body"]):
            problems.append(f"{where}: {error.json_path}: {error.message}")

    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"ok: {len(given['routes'])} routes, {len(given['answers'])} answers")


if __name__ == "__main__":
    main()
