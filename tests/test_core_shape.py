"""The core's shape (issue 11), checked on codex.py's syntax tree so that parallel work keeps it:
config is read as declared fields (no `getattr(cfg, "key", default)`), nothing assigns to a
config after load, front ends use a Session's public properties, not its private state, and
each section uses only the sections above it (the module docstring's promise)."""
import ast
import re

from conftest import codex_source, codex_tree

TREE = codex_tree()
CONFIG_NAMES = {"cfg", "config", "ctx", "resumed"}  #: local names that hold a Config or TurnContext


def _config_expr(node):
    """Whether `node` is cfg / config / ctx / self.cfg / self.ctx / x.cfg."""
    if isinstance(node, ast.Name):
        return node.id in CONFIG_NAMES
    return isinstance(node, ast.Attribute) and node.attr in ("cfg", "ctx", "config")


def _where(node):
    return "codex.py:%d" % node.lineno


def test_config_fields_are_read_as_declared():
    bad = [_where(n) for n in ast.walk(TREE)
           if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "getattr"
           and len(n.args) == 3 and _config_expr(n.args[0]) and isinstance(n.args[1], ast.Constant)]
    assert not bad, "read Config fields directly (they are declared): %s" % ", ".join(bad)


def test_nothing_assigns_to_a_config():
    bad = []
    for node in ast.walk(TREE):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(t, ast.Attribute) and _config_expr(t.value):
                    bad.append(_where(t))
                if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Attribute) and _config_expr(t.value.value):
                    bad.append(_where(t))
    assert not bad, "Config is immutable: use .replace() or TurnContext.with_overrides(): %s" % ", ".join(bad)


def test_front_ends_use_public_session_properties():
    bad = [_where(n) for n in ast.walk(TREE)
           if isinstance(n, ast.Attribute) and n.attr in ("_closed", "_task", "_ctx", "_rollout")
           and isinstance(n.value, ast.Name) and n.value.id == "session"]
    assert not bad, "use session.closed / busy / turn_context: %s" % ", ".join(bad)


def _session_privates():
    """The private attributes and methods of class Session (self._x it sets or defines)."""
    cls = next(n for n in TREE.body if isinstance(n, ast.ClassDef) and n.name == "Session")
    names = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    names |= {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
              and isinstance(n.value, ast.Name) and n.value.id == "self"}
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_front_end_section_touches_session_privates():
    """From §17 on (the front ends and the CLI), nothing reads or writes a Session private
    (`x._task`, `x._closed`, `x._emit(...)`): they use the §08 contract (start, submit,
    next_event through pump_events, interrupt, shutdown and the public properties)."""
    privates = _session_privates()
    assert {"_task", "_closed", "_ctx", "_emit", "_events"} <= privates
    first = dict((name, line) for line, name in SECTION_LINES)["17"]
    bad = ["codex.py:%d %s" % (n.lineno, ast.unparse(n) if hasattr(ast, "unparse") else n.attr)
           for n in ast.walk(TREE) if isinstance(n, ast.Attribute) and n.attr in privates
           and getattr(n, "lineno", 0) >= first and not (isinstance(n.value, ast.Name) and n.value.id == "self")]
    assert not bad, "front ends use the Session's public contract: %s" % ", ".join(bad)


def test_front_ends_share_one_event_pump():
    """Only pump_events (§08) calls a session's next_event in a loop; a front end may read one
    event on its own only outside a loop (exec's session_configured before its header)."""
    loops = []
    for node in ast.walk(TREE):
        if isinstance(node, (ast.While, ast.For)):
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "next_event"
                        and isinstance(sub.func.value, ast.Name) and sub.func.value.id == "session"):
                    loops.append(node)
    owners = set()
    for stmt in TREE.body:
        for loop in loops:
            if stmt.lineno <= loop.lineno <= stmt.end_lineno:
                owners.add(stmt.name)
    assert owners == {"pump_events"}, owners


# -- the map tells the truth: each section uses only the sections above it ------------------
#
# Precisely: a *module name* is a name bound by a top-level statement of codex.py (def, class,
# assignment, import, also inside a top-level if/try); its section is the banner above that
# statement (0: above §01).  Every top-level statement in section N (a function or class with
# everything inside it, or a module-level assignment) may load a module name only if that name
# is bound in a section <= N.  Loads are resolved by Python's scoping rules (parameters, local
# assignments, nested defs, comprehension variables and imports shadow module names; `global`
# does not; a class body does not enclose its methods), so a local that happens to share a
# module name is not counted.  `globals()["name"]` counts as a load of `name`; `globals()` with
# a computed key (the CLI's handler table) is allowed only in the last section, where every
# name is above it.  There is no allow-list.

SRC = codex_source()
BANNERS = [(m.start(), m.group(1)) for m in re.finditer(r"^# §(\d+[a-z]?) ", SRC, re.M)]
LINE_STARTS = [0] + [m.end() for m in re.finditer("\n", SRC)]
SECTION_LINES = [(SRC.count("\n", 0, pos) + 1, name) for pos, name in BANNERS]
ORDER = {name: i + 1 for i, (_, name) in enumerate(SECTION_LINES)}  #: section -> rank (0: above §01)


def _section(lineno):
    current = None
    for line, name in SECTION_LINES:
        if line <= lineno:
            current = name
    return current


def _top_level_bindings(stmt):
    """Names a top-level statement binds in the module namespace."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    out = set()
    for field in ("body", "orelse", "finalbody"):
        for sub in getattr(stmt, field, None) or []:
            out |= _top_level_bindings(sub)
    for handler in getattr(stmt, "handlers", None) or []:
        for sub in handler.body:
            out |= _top_level_bindings(sub)
    return out


def module_names():
    """{name: section} for every name bound at codex.py's top level (first binding wins)."""
    names = {}
    for stmt in TREE.body:
        for name in _top_level_bindings(stmt):
            names.setdefault(name, _section(stmt.lineno))
    return names


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
           ast.GeneratorExp, ast.ClassDef)


def _walk_scope(roots):
    """The nodes of `roots` evaluated in the scope they belong to: a nested scope is yielded,
    with what it evaluates in the scope around it (decorators, defaults, annotations, bases,
    a comprehension's first iterable), but not its body."""
    stack = [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            stack += [d for d in args.defaults + args.kw_defaults if d is not None]
            if not isinstance(node, ast.Lambda):
                stack += node.decorator_list + ([node.returns] if node.returns else [])
                stack += [a.annotation for a in args.args + args.kwonlyargs + args.posonlyargs if a.annotation]
        elif isinstance(node, ast.ClassDef):
            stack += node.decorator_list + node.bases + [k.value for k in node.keywords]
        elif isinstance(node, _SCOPES):
            stack.append(node.generators[0].iter)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _scope_body(scope):
    """What a function/lambda/class/comprehension evaluates in its own scope."""
    if isinstance(scope, ast.Lambda):
        return [scope.body]
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return scope.body
    roots = [getattr(scope, "elt", None), getattr(scope, "key", None), getattr(scope, "value", None)]
    for i, gen in enumerate(scope.generators):
        roots += [gen.target] + gen.ifs + ([gen.iter] if i else [])
    return roots


def _local_names(scope):
    """Names local to a function/lambda/comprehension/class scope."""
    local, declared_global = set(), set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = scope.args
        local |= {a.arg for a in args.args + args.kwonlyargs + args.posonlyargs}
        local |= {a.arg for a in (args.vararg, args.kwarg) if a}
    for node in _walk_scope(_scope_body(scope)):
        if isinstance(node, ast.Global):
            declared_global |= set(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            local.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            local |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            local.add(node.name)
    return local - declared_global


def _module_loads(stmt):
    """(name, lineno) for each load in a top-level statement that resolves to the module
    namespace; a `globals()[...]` lookup with a computed key is reported as "globals()[...]"."""
    out = []

    def scan(nodes, visible, enclosing):
        # visible: local-name sets this scope sees; enclosing: what a nested scope sees
        # (a class body's names are not visible in its methods)
        for node in nodes:
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if not any(node.id in names for names in visible):
                    out.append((node.id, node.lineno))
            elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Call)
                  and isinstance(node.value.func, ast.Name) and node.value.func.id == "globals"):
                key = node.slice if isinstance(node.slice, ast.Constant) else getattr(node.slice, "value", None)
                out.append((key.value if isinstance(key, ast.Constant) and isinstance(key.value, str)
                            else "globals()[...]", node.lineno))
            if isinstance(node, _SCOPES):
                own = _local_names(node)
                inner = enclosing + [own]
                scan(_walk_scope(_scope_body(node)), inner, enclosing if isinstance(node, ast.ClassDef) else inner)

    scan(_walk_scope([stmt]), [], [])
    return out


def section_order_violations():
    """[(text)] for each load of a module name bound in a later section."""
    names = module_names()
    last = SECTION_LINES[-1][1]
    bad = []
    for stmt in TREE.body:
        section = _section(stmt.lineno)
        if section is None:
            continue
        for name, lineno in _module_loads(stmt):
            if name == "globals()[...]":
                if section != last:
                    bad.append("codex.py:%d: §%s looks up globals() with a computed key" % (lineno, section))
                continue
            where = names.get(name)
            if name in names and ORDER.get(where, 0) > ORDER[section]:
                bad.append("codex.py:%d: §%s uses %s from §%s" % (lineno, section, name, where))
    return bad


def test_each_section_uses_only_the_sections_above_it():
    bad = section_order_violations()
    assert not bad, ("move the code (or pass a callable down) so that each section uses only the "
                     "sections above it:\n  " + "\n  ".join(sorted(bad)))


def test_the_section_order_check_sees_a_forward_use(monkeypatch):
    """The checker finds a call, a base class, a default, a decorator, a `globals()` lookup and
    a name used inside a method or comprehension, and ignores locals that shadow a module name."""
    src = (
        "# §01 First\n"
        "def early(): return late() + [x for x in LATER]\n"
        "class C(Base):\n    def m(self, a=DEFAULT):\n        return globals()['late']\n"
        "def shadow(late):\n    return late\n"
        "def quiet():\n    late = 1\n    return [late for _ in ()]\n"
        "# §02 Second\n"
        "def late(): return early()\nLATER = ()\nclass Base: pass\nDEFAULT = 1\n"
    )
    monkeypatch.setitem(globals(), "TREE", ast.parse(src))
    monkeypatch.setitem(globals(), "SECTION_LINES", [(1, "01"), (11, "02")])
    monkeypatch.setitem(globals(), "ORDER", {"01": 1, "02": 2})
    found = sorted(re.sub(r"codex.py:\d+: ", "", b) for b in section_order_violations())
    assert found == ["§01 uses Base from §02", "§01 uses DEFAULT from §02", "§01 uses LATER from §02",
                     "§01 uses late from §02", "§01 uses late from §02"], found
