"""The house rules, checked on the source: layers only import leftwards, no import cycles, and
retrieval never imports the training stack or the LOWTRAN build."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "akkd_scale"
#: Layer rank of each sub-package (data flows left to right); top-level helper modules rank 0.
LAYERS = {"sensors": 1, "io": 2, "physics": 3, "simulate": 3, "models": 4, "training": 5, "testing": 6,
          "pipeline": 7, "cli": 8}
SHARED = {"errors", "config", "conventions", "constants", "utils", "metrics", "__init__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """akkd_scale modules imported anywhere in a file (module level or inside functions)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("akkd_scale")}


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def _rank(module: str) -> int:
    parts = module.split(".")
    return 0 if len(parts) < 2 or parts[1] in SHARED else LAYERS[parts[1]]


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_module_imports_from_a_layer_to_its_right():
    wrong = [(m, i) for m, imports in _graph().items() for i in imports
             if _rank(m) and _rank(i) > _rank(m) and m != "akkd_scale"]
    assert not wrong, wrong


def test_no_import_cycles():
    graph = _graph()
    graph = {m: {i for i in imports if i in graph and i != m} for m, imports in graph.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_runtime_layers_never_import_training_or_lowtran():
    runtime = [m for m in _graph() if m.split(".")[1:2] and m.split(".")[1] in ("models", "pipeline", "io", "sensors")
               and m not in ("akkd_scale.pipeline.demo", "akkd_scale.pipeline.adapt")]
    graph = _graph()
    reachable, todo = set(), list(runtime)
    while todo:
        module = todo.pop()
        if module in reachable:
            continue
        reachable.add(module)
        if module in ("akkd_scale.pipeline.demo", "akkd_scale.pipeline.adapt"):  # the demo simulates scenes;
            continue  # adaptation simulates and trains students: neither is retrieval
        todo += [i for i in graph.get(module, ()) if i in graph]
    forbidden = sorted(m for m in reachable if m.startswith(("akkd_scale.training", "akkd_scale.physics.lowtran",
                                                             "akkd_scale.physics.atmosphere", "akkd_scale.testing")))
    assert not forbidden, forbidden


def test_test_modules_import_no_training_stack_at_module_level():
    """TensorFlow must not enter the test process (and the Dask workers it starts) at collection."""
    heavy = ("keras", "tensorflow", "autokeras", "akkd_scale.training.distill", "akkd_scale.training.students",
             "akkd_scale.training.teacher", "akkd_scale.testing.bundles")
    offenders = []
    for path in (PACKAGE.parent / "tests").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(heavy)]
    assert not offenders, offenders
