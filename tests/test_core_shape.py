"""The core's shape (issue 11), checked on codex.py's syntax tree so that parallel work keeps it:
config is read as declared fields (no `getattr(cfg, "key", default)`), nothing assigns to a
config after load, and front ends use a Session's public properties, not its private state."""
import ast

from conftest import REPO

TREE = ast.parse((REPO / "codex.py").read_text(encoding="utf-8"))
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
