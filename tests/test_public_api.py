"""The public surface on purpose: every ``__all__`` complete and sorted, the root's names
resolve, and no module of the package imports the package root."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import rftcost

PACKAGE = Path(rftcost.__file__).resolve().parent
MODULES = {
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
    for path in sorted(PACKAGE.rglob("*.py"))
}

# Modules whose ``__all__`` is not complete yet (public names missing, or no ``__all__``
# although they define public names): each is listed with what is missing, and this test
# fails as soon as one of them passes, so that the list only ever shrinks.
NOT_YET_COMPLETE: dict[str, str] = {}


def tree_of(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"))


def top_level(tree: ast.Module) -> list[ast.stmt]:
    """Statements at module level, those inside a top-level ``if``/``try`` too (a name
    bound there is bound at import), but not under ``if TYPE_CHECKING``."""
    found: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                found += [*node.body, *node.orelse]
        elif isinstance(node, ast.Try):
            found += [*node.body, *node.orelse, *node.finalbody]
            for handler in node.handlers:
                found += handler.body
        else:
            found.append(node)
    return found


def declared_all(tree: ast.Module) -> list[str] | None:
    """The module's ``__all__`` when it is a literal list or tuple of names."""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
            value = ast.literal_eval(node.value)
            return list(value)
    return None


def public_definitions(tree: ast.Module) -> list[str]:
    """Public functions and classes defined at module level."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [n.name for n in top_level(tree) if isinstance(n, kinds) and not n.name.startswith("_")]


def bound_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in top_level(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def isort_key(name: str) -> tuple[int, list[tuple[int, int, str]], str]:
    """ruff's RUF022 "isort-style" order: SCREAMING_CASE constants, then CamelCase
    classes, then everything else; a natural sort (digits by value) within each group."""
    if len(name) > 1 and name.upper() == name and name.lower() != name:
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    parts = [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.findall(r"\d+|\D+", name)]
    return group, parts, name


def test_the_isort_order_is_ruffs() -> None:
    names = ["load", "A", "MAX_2", "MAX_10", "Policy", "CENT", "item10", "item2", "_x", "Money"]
    assert sorted(names, key=isort_key) == [
        "CENT", "MAX_2", "MAX_10", "A", "Money", "Policy", "_x", "item2", "item10", "load",
    ]  # fmt: skip


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_all_is_sorted_and_names_what_the_module_binds(module: str) -> None:
    if module == "rftcost":
        return  # built from its lazy exports: test_the_root_names_resolve_and_are_sorted
    tree = tree_of(module)
    names = declared_all(tree)
    if names is None:
        return
    assert names == sorted(names, key=isort_key), f"{module}.__all__ is not in isort order"
    assert len(names) == len(set(names)), f"{module}.__all__ names a name twice"
    unbound = sorted(set(names) - bound_names(tree))
    assert not unbound, f"{module}.__all__ names what it does not define: {unbound}"


@pytest.mark.parametrize("module", sorted(set(MODULES) - set(NOT_YET_COMPLETE)))
def test_every_all_is_complete(module: str) -> None:
    tree = tree_of(module)
    public = public_definitions(tree)
    names = rftcost.__all__ if module == "rftcost" else declared_all(tree)
    if names is None:
        assert not public, f"{module} defines public names and has no __all__: {public}"
        return
    missing = [name for name in public if name not in names]
    assert not missing, f"{module}: public but not in __all__ (list them or make them _private)"


def test_the_list_of_modules_not_yet_complete_is_current() -> None:
    for module in NOT_YET_COMPLETE:
        assert module in MODULES, f"{module} is gone: remove it from NOT_YET_COMPLETE"
        tree = tree_of(module)
        names = declared_all(tree) or []
        complete = all(name in names for name in public_definitions(tree))
        assert not complete, f"{module} is complete now: remove it from NOT_YET_COMPLETE"


def test_the_root_names_resolve_and_are_sorted() -> None:
    assert rftcost.__all__ == sorted(rftcost.__all__, key=isort_key)
    assert len(rftcost.__all__) == len(set(rftcost.__all__))
    for name in rftcost.__all__:
        assert getattr(rftcost, name) is not None, name
    assert set(dir(rftcost)) >= set(rftcost.__all__)
    with pytest.raises(AttributeError):
        rftcost.no_such_name  # noqa: B018


def test_no_module_imports_the_package_root() -> None:
    """A module imports what it needs from the module that defines it (``rftcost.billing``),
    never from ``rftcost`` itself: the root imports lazily from every module, so importing it
    back makes a cycle. Imports inside functions count too."""
    found = []
    for module in MODULES:
        if module == "rftcost":
            continue
        for node in ast.walk(tree_of(module)):
            if isinstance(node, ast.Import) and any(a.name == "rftcost" for a in node.names):
                found.append(f"{module}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "rftcost" and not node.level:
                found.append(f"{module}:{node.lineno}")
    assert not found, found
