#!/usr/bin/env python3
"""check_openapi: docs/openapi.yaml against the daemon.

1. The spec is well formed: OpenAPI 3.1, every $ref resolves, every
   operation has responses, every schema is valid JSON Schema 2020-12.
2. Every route the daemon serves (the route table in daemon/api.c, one
   method per row) is in the spec, and the spec documents no route the
   daemon does not serve.
3. With --capture FILE (JSON lines written by tests/check_api: method, path,
   status, content_type, body), every captured response is documented:
   its path and method, its status, its content type, and a JSON body that
   validates against the documented schema; and every documented operation
   was reached by at least one captured request.

Prints one line per failure and a summary "N passed, M failed"; exits 1 on
failure, 77 (skip) when python3-yaml or python3-jsonschema is missing.
"""
import json
import os
import re
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
try:
    import yaml
    import jsonschema
except ImportError as ex:  # pragma: no cover
    print(f"SKIP: {ex} (Debian: python3-yaml python3-jsonschema)")
    sys.exit(77)

TOP = os.environ.get("TOP_SRCDIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SPEC = os.path.join(TOP, "docs", "openapi.yaml")
API_C = os.path.join(TOP, "daemon", "api.c")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

fails = []
passes = 0


def check(cond, msg):
    global passes
    if cond:
        passes += 1
    else:
        fails.append(msg)
    return cond


def walk_refs(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield path, v
            else:
                yield from walk_refs(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_refs(v, f"{path}/{i}")


def resolve(spec, ref):
    if not ref.startswith("#/"):
        return None
    node = spec
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def deref(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(spec, node["$ref"])
    return node


def validator(spec, schema):
    resolver = jsonschema.RefResolver(base_uri="", referrer=spec)
    return jsonschema.Draft202012Validator(schema, resolver=resolver)


def template_regex(tmpl):
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(tmpl)) + "$")


def served_routes():
    """(template, method) pairs from daemon/api.c's routes[] table."""
    text = open(API_C, encoding="utf-8").read()
    table = text[text.index("static const struct route routes[]"):]
    table = table[: table.index("};")]
    out = set()
    for m in re.finditer(r'\{\s*"(/[^"]*)",\s*"([A-Z, ]+)"', table):
        for meth in m.group(2).split(","):
            meth = meth.strip()
            if meth != "HEAD":
                out.add((m.group(1), meth))
    return out


def check_spec(spec):
    check(str(spec.get("openapi", "")).startswith("3.1"), "spec: openapi is not 3.1.x")
    for where, ref in walk_refs(spec):
        check(resolve(spec, ref) is not None, f"spec: unresolved $ref {ref} at {where}")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
            check(True, "")
        except jsonschema.SchemaError as ex:
            check(False, f"spec: schema {name} is invalid: {ex.message}")
    for p, item in spec["paths"].items():
        for meth, op in item.items():
            if meth not in METHODS:
                continue
            check(bool(op.get("responses")), f"spec: {meth.upper()} {p} has no responses")
            check(bool(op.get("operationId")), f"spec: {meth.upper()} {p} has no operationId")


def check_routes(spec):
    served = served_routes()
    check(len(served) >= 15, f"routes: only {len(served)} routes read from daemon/api.c")
    documented = {(p, m.upper()) for p, item in spec["paths"].items() for m in item if m in METHODS}
    for r in sorted(served - documented):
        check(False, f"routes: {r[1]} {r[0]} is served but not in docs/openapi.yaml")
    for r in sorted(documented - served):
        check(False, f"routes: {r[1]} {r[0]} is documented but not served")
    check(served == documented, "routes: served and documented differ")


def media(ct):
    return (ct or "").split(";")[0].strip().lower()


def check_capture(spec, path):
    problem = {"$ref": "#/components/schemas/Problem"}
    templates = [(template_regex(p), p) for p in spec["paths"]]
    seen_ops = set()
    n = 0
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        rec = json.loads(line)
        n += 1
        meth, p, status = rec["method"], rec["path"], rec["status"]
        ct, body = rec.get("content_type"), rec.get("body") or ""
        what = f"capture: {meth} {p} -> {status}"
        tmpl = next((t for rx, t in templates if rx.match(p)), None)
        op = None
        if tmpl:
            item = spec["paths"][tmpl]
            op = item.get("get" if meth == "HEAD" else meth.lower())
        generic = status in (401, 404, 405, 503) or (op is None and status in (400, 413, 415))
        if op is None and not generic:
            check(False, f"{what}: route not documented")
            continue
        if op is not None:
            seen_ops.add((tmpl, meth))
        resp = deref(spec, op["responses"].get(str(status))) if op else None
        if resp is None:
            if not check(generic, f"{what}: status not documented"):
                continue
            # Generic errors (auth, unknown route, wrong method, draining)
            # are problems whatever the route.
            if meth != "HEAD" and status != 204:
                check(media(ct) == "application/problem+json", f"{what}: content type {ct}, want problem+json")
                try:
                    errs = list(validator(spec, problem).iter_errors(json.loads(body)))
                    check(not errs, f"{what}: {errs[0].message if errs else ''}")
                except ValueError:
                    check(False, f"{what}: body is not JSON")
            continue
        content = resp.get("content")
        if not content or meth == "HEAD":
            check(meth == "HEAD" or body == "", f"{what}: body where none is documented")
            continue
        match = None
        for k, v in content.items():
            if media(k) == media(ct):
                match = (k, v)
        if not check(match is not None, f"{what}: content type {ct} not in {list(content)}"):
            continue
        key, cv = match
        if "text/plain" in key:
            check(ct.replace(" ", "") == key.replace(" ", ""), f"{what}: content type {ct}, want {key}")
        schema = cv.get("schema")
        if media(key).endswith("json") and schema is not None:
            try:
                doc = json.loads(body)
            except ValueError:
                check(False, f"{what}: body is not JSON")
                continue
            errs = sorted(validator(spec, schema).iter_errors(doc), key=lambda e: list(e.path))
            check(not errs, f"{what}: {'/'.join(map(str, errs[0].path)) if errs else ''}: {errs[0].message[:300] if errs else ''}")
    check(n > 0, "capture: empty")
    # the tests exercise every documented operation at least once
    for p, item in spec["paths"].items():
        for m in item:
            if m in METHODS:
                check((p, m.upper()) in seen_ops, f"capture: no test reached {m.upper()} {p}")
    return n


def main():
    args = sys.argv[1:]
    spec = yaml.safe_load(open(SPEC, encoding="utf-8"))
    check_spec(spec)
    check_routes(spec)
    if args[:1] == ["--capture"]:
        n = check_capture(spec, args[1])
        print(f"check_openapi: {n} captured responses checked")
    for f in fails:
        print("FAIL:", f)
    print(f"{passes} passed, {len(fails)} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
