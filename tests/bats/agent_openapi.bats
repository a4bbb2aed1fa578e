#!/usr/bin/env bats
# docs/api/openapi.yaml documents every path the agent's API serves. The routes are not
# a table but string compares in the route functions (api_routes.c and the *_route()
# hooks it calls), so the check reads those compares: each path literal must be a
# documented path (or a prefix of one), each segment literal a segment of one. Adding a
# route without documenting it fails here. No office needed.

load helpers

@test "every route the agent's API serves is in docs/api/openapi.yaml" {
    run python3 - "$OTASUKE_REPO" <<'PY'
import os, re, sys
repo = sys.argv[1]
agent = os.path.join(repo, "services/agent")
routes = open(os.path.join(agent, "api_routes.c")).read()
# api_routes.c plus every file defining a NAME_route() hook that route() calls
files = ["api_routes.c"]
for hook in re.findall(r"if \((\w+_route)\(c\)\)", routes):
    for f in sorted(os.listdir(agent)):
        if f.endswith(".c") and re.search(r"^int %s\(" % hook, open(os.path.join(agent, f)).read(), re.M):
            files.append(f)
            break
    else:
        print("route hook %s: no file defines it" % hook)
        sys.exit(1)
lit = re.compile(r'strn?cmp\(\s*(col|seg\[\d\]|what|verb|c->url|path)\s*,\s*"([^"]+)"')
found = {}
for f in files:
    for m in lit.finditer(open(os.path.join(agent, f)).read()):
        found.setdefault(m.group(2), f)
doc = open(os.path.join(repo, "docs/api/openapi.yaml")).read()
paths = re.findall(r"^  (/\S+):\s*$", doc, re.M)
segs = {s for p in paths for s in p.strip("/").split("/")}
missing = []
for l, f in sorted(found.items()):
    if l == "v1":
        continue
    if l.startswith("/"):
        ok = any(p == l or p.startswith(l.rstrip("/") + "/") for p in paths)
    else:
        ok = l in segs
    if not ok:
        missing.append("%s (%s)" % (l, f))
print("%d route literals in %s; %d documented paths" % (len(found), ", ".join(files), len(paths)))
if missing:
    print("not in docs/api/openapi.yaml: " + ", ".join(missing))
    sys.exit(1)
PY
    echo "$output" >&3
    assert_success
    # the check itself sees the hooks and the incidents routes
    assert_output --partial "incidents_api.c"
    assert_output --regexp "[3-9][0-9] route literals"
}

@test "the check fails when a route is not documented" {
    tmp=$(mktemp -d)
    mkdir -p "$tmp/services/agent" "$tmp/docs/api"
    cp "$OTASUKE_REPO"/services/agent/*.c "$tmp/services/agent/"
    grep -v '^  /v1/webd:' "$OTASUKE_REPO/docs/api/openapi.yaml" >"$tmp/docs/api/openapi.yaml"
    # the first test's script, pointed at the copy
    script=$(sed -n "/run python3 - \"\$OTASUKE_REPO\" <<'PY'/,/^PY\$/p" "$BATS_TEST_FILENAME" | sed '1d;$d')
    run python3 -c "$script" "$tmp"
    rm -rf "$tmp"
    assert_failure
    assert_output --partial "webd (api_auth.c)"
}
