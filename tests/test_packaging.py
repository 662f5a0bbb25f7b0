"""The environment is described once: pyproject, environment.yml and constraints.txt agree."""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_deps() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {_name(d): d.replace(" ", "") for d in data["project"]["dependencies"]}


def _environment_pip_deps() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    deps = {}
    for line in lines[start + 1 :]:
        item = line.strip()
        if not item.startswith("- "):
            break
        item = item[2:].strip()
        if item.startswith("-e"):
            continue
        deps[_name(item)] = item.replace(" ", "")
    return deps


def test_environment_yml_matches_pyproject():
    assert _environment_pip_deps() == _pyproject_deps()


def test_constraints_pin_every_dependency_and_torch():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    assert pins.get("torch") == "2.13.0", "torch must stay pinned to the local CPU wheel's version"
    missing = sorted(set(_pyproject_deps()) - set(pins))
    assert not missing, f"constraints.txt lacks pins for {missing}"
    tl_major, tl_minor = (int(x) for x in pins["transformer-lens"].split(".")[:2])
    assert tl_major == 3 and tl_minor >= 9, "transformer-lens must be >=3.9,<4 (4.x removed HookedTransformer)"
    assert pins["sae-lens"].startswith("6.")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# ----------------------------------------------------------------------------------- layering
# Imports point only down: app (and the top-level ``interp`` entry) and widgets -> zoo -> methods ->
# core, viz. The table names, for every layer, the layers its modules may import; a method may also
# import its own package, and translation the public names of ``interp.lens``.
METHODS = ("lens", "translation", "lorsa", "steering", "thr")
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "viz": {"viz"},
    **{m: {"core", "viz", m} for m in METHODS},
    "zoo": {"core", "viz", *METHODS, "zoo"},
    "app": {"core", "viz", *METHODS, "zoo", "app", "top"},
    "top": {"core", "viz", *METHODS, "zoo", "app", "top"},
    "widgets": {"core", "viz", *METHODS, "zoo", "widgets"},
}
ALLOWED["translation"].add("lens")
# The error base and the checker every config uses: leaves (they import only each other), so every layer may
# import them, viz included (paper_layout's FigureConfigError is an InterpConfigError like every other).
SHARED_LEAVES = {"interp.core.errors", "interp.core.validate"}
PUBLIC_ONLY = {("translation", "lens")}  # (importer, imported): only ``from interp.lens import <name in __all__>``
# Third-party packages a layer never imports (presentation code stays in widgets/).
FORBIDDEN_EXTERNAL = {layer: {"ipywidgets", "IPython"} for layer in ALLOWED if layer != "widgets"}


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    target: str  # dotted module imported (a submodule when ``from pkg import submodule``)
    names: tuple[str, ...]  # names taken from target (``from target import a, b``); () for a module import
    line: int
    local: bool  # inside a function: runs on call, not at import
    type_only: bool  # under ``if TYPE_CHECKING``: never runs

    def __str__(self) -> str:
        what = f"from {self.target} import {', '.join(self.names)}" if self.names else f"import {self.target}"
        return f"{_path(self.importer)}:{self.line}: {what}"


def _modules() -> dict[str, Path]:
    """Every module of interp/ and widgets/, by dotted name (a package by its own name)."""
    out = {}
    for top in ("interp", "widgets"):
        for p in sorted((ROOT / top).rglob("*.py")):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = p
    return out


MODULES = _modules()


def _path(module: str) -> str:
    path = MODULES.get(module)
    return str(path.relative_to(ROOT)) if path is not None and path.is_relative_to(ROOT) else module


def _imports(module: str, modules: dict[str, Path]) -> list[Import]:
    """Every import statement of ``module`` (module level, function-local, TYPE_CHECKING), resolved to
    absolute names; ``from pkg import x`` points at ``pkg.x`` when that is a module of ours."""
    tree = ast.parse(modules[module].read_text(), filename=str(modules[module]))
    package = module if modules[module].name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, local: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, True, type_only)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), local, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), local, type_only)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(module, alias.name, (), child.lineno, local, type_only))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                plain = []
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        found.append(Import(module, sub, (), child.lineno, local, type_only))
                    else:
                        plain.append(alias.name)
                if plain:
                    found.append(Import(module, target, tuple(plain), child.lineno, local, type_only))
            else:
                visit(child, local, type_only)

    visit(tree, False, False)
    return found


IMPORTS = {m: _imports(m, MODULES) for m in MODULES}


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "widgets":
        return "widgets"
    if parts == ["interp"]:
        return "top"
    return parts[1]


def _public_names(package: str) -> set[str]:
    tree = ast.parse(MODULES[package].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError(f"{_path(package)} has no __all__")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_aliases(tree: ast.AST, modules: dict[str, Path]) -> dict[str, str]:
    """Local names bound to modules of ours by ``import a.b as x`` / ``from a import b`` (b a module)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname and a.name in modules:
                    out[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for a in node.names:
                if f"{node.module}.{a.name}" in modules:
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def layering_violations(modules: dict[str, Path] = MODULES) -> list[str]:
    """Every import in ``modules`` (interp/ and widgets/) that points up or sideways, or reaches another
    package's private names (a private module, an underscore name, or an underscore attribute of its module)."""
    problems = []
    for module in modules:
        src = _layer(module)
        for imp in IMPORTS[module] if modules is MODULES else _imports(module, modules):
            root = imp.target.split(".")[0]
            if root not in ("interp", "widgets"):
                if root in FORBIDDEN_EXTERNAL.get(src, ()):
                    problems.append(f"{imp}  ({src} never imports {root})")
                continue
            dst = _layer(imp.target) if imp.target in modules or root == "widgets" else "?"
            if dst == "?":
                problems.append(f"{imp}  (no such module)")
                continue
            if dst not in ALLOWED[src] and imp.target not in SHARED_LEAVES:
                problems.append(f"{imp}  ({src} may import only {sorted(ALLOWED[src])}, not {dst})")
                continue
            if dst == src:
                continue
            if (src, dst) in PUBLIC_ONLY:
                package = f"interp.{dst}"
                if imp.target != package:
                    problems.append(f"{imp}  ({src} imports {dst} only through `from {package} import ...`)")
                elif not set(imp.names) <= _public_names(package):
                    hidden = sorted(set(imp.names) - _public_names(package))
                    problems.append(f"{imp}  ({hidden} not in {package}.__all__)")
                continue
            if any(_private(p) for p in imp.target.split(".")):
                problems.append(f"{imp}  (a private module of {dst})")
            for name in imp.names:
                if _private(name):
                    problems.append(f"{imp}  (private name {name} of {dst})")
        tree = ast.parse(modules[module].read_text())
        aliases = {a: m for a, m in _module_aliases(tree, modules).items() if _layer(m) != src}
        if aliases:
            for node in ast.walk(tree):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                        and node.value.id in aliases and _private(node.attr)):
                    problems.append(f"{_path(module)}:{node.lineno}: {node.value.id}.{node.attr}  "
                                    f"(private name of {aliases[node.value.id]})")
    return problems


def test_every_module_has_a_layer():
    assert {_layer(m) for m in MODULES} <= set(ALLOWED), sorted({_layer(m) for m in MODULES} - set(ALLOWED))


def test_the_shared_leaves_import_only_each_other():
    for leaf in SHARED_LEAVES:
        ours = [imp for imp in IMPORTS[leaf] if imp.target.split(".")[0] in ("interp", "widgets")]
        assert all(imp.target in SHARED_LEAVES for imp in ours), [str(i) for i in ours]


def test_imports_point_only_down():
    problems = layering_violations()
    assert not problems, "imports that break the layering:\n" + "\n".join(problems)


def _import_graph(*, include_local: bool = True) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, imports in IMPORTS.items():
        for imp in imports:
            if imp.target in MODULES and imp.target != module and not imp.type_only and (include_local or not imp.local):
                graph[module].add(imp.target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a closed path ``[a, b, ..., a]``, or None (iterative DFS, three colours)."""
    colour = dict.fromkeys(graph, 0)  # 0 unseen, 1 on the stack, 2 done
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[child] == 1:
                return path[path.index(child):] + [child]
            elif colour[child] == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_find_cycle_finds_one():
    # the detector itself: a hidden two-step cycle is found, a diamond is not a cycle
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None


def test_no_import_cycles():
    # function-local imports count: a cycle hidden in a function still ties the two modules together
    graph = _import_graph()
    assert "interp.zoo" in graph["interp"], "interp.load_model's function-local zoo import is an edge"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_layering_test_catches_violations(tmp_path):
    # the rule test can fail: a method importing the zoo, a private name of another package, a
    # translation import past interp.lens's public names, a private module attribute and a core
    # module importing a method or ipywidgets are all reported
    fake = {
        "interp.thr.fake": "from interp.zoo import tasks\nfrom interp.core.tokens import _secret\n",
        "interp.translation.fake": "def f():\n    from interp.lens.unembed import unembed_topk\n",
        "interp.steering.fake": "from interp.core import tokens\ntokens._cache\n",
        "interp.core.fake": "import interp.steering\nimport ipywidgets\n",
    }
    modules = dict(MODULES)
    for name, text in fake.items():
        modules[name] = tmp_path / f"{name}.py"
        modules[name].write_text(text)
    problems = "\n".join(layering_violations(modules))
    assert "thr may import only" in problems and "not zoo" in problems
    assert "private name _secret" in problems
    assert "translation imports lens only through" in problems
    assert "tokens._cache  (private name of interp.core.tokens)" in problems
    assert "core may import only ['core'], not steering" in problems and "core never imports ipywidgets" in problems
    assert len(problems.splitlines()) == 6 + len(layering_violations())


def test_no_pickle_loading():
    offenders = []
    for p in list((ROOT / "interp").rglob("*.py")) + list((ROOT / "widgets").rglob("*.py")):
        text = p.read_text()
        if "pickle.load" in text:
            offenders.append(str(p))
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            if "weights_only=True" not in call:
                offenders.append(f"{p}: {call}")
    assert not offenders, offenders


def test_tests_package_is_this_repository_s():
    """`from tests.browser...` must find this folder: a package installed into the venv with a top-level
    `tests` (tuned-lens's wheel has one) shadows it, which is why `make bench` keeps its peers in .venv-bench."""
    import tests

    here = Path(__file__).resolve().parent
    found = [Path(p).resolve() for p in getattr(tests, "__path__", [])]
    assert here in found, (f"`import tests` finds {found}, not {here}: an installed package ships a top-level "
                           "`tests`; uninstall it from this venv (bench peers belong in .venv-bench, see Makefile).")
