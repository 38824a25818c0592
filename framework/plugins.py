"""The plugin manager: built-ins and installed packages register through the same hooks.

Set AEBENCH_NO_PLUGINS=1 to skip installed (entry-point) plugins, or AEBENCH_LOAD_PLUGINS=a,b to load
only the named ones (a name no installed plugin has gets a warning). Built-in plugins always load.
`add_plugin_file(path)` (the CLI's `--plugin path/to/file.py`) loads an unpackaged plugin module.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import pluggy

from aebench import hookspecs
from aebench.errors import AebenchError, DuplicateNameError
from aebench.registry import Registry

DEFAULT_PLUGINS = (
    "aebench.data.orl_faces",
    "aebench.data.fashion_mnist",
    "aebench.data.image_folder",
    "aebench.models.conv_ae",
    "aebench.samplers.uniform",
    "aebench.samplers.gaussian",
    "aebench.samplers.line",
    "aebench.samplers.plane_paths",
    "aebench.samplers.correlated",
    "aebench.samplers.standard_normal",
    "aebench.samplers.gmm",
    "aebench.samplers.pca",
    "aebench.samplers.interpolate",
    "aebench.samplers.elliptic",
    "aebench.samplers.shell",
    "aebench.samplers.kde",
    "aebench.samplers.flow",
    "aebench.samplers.vae2",
    "aebench.regions.box",
    "aebench.regions.ellipsoid",
    "aebench.regions.knn",
    "aebench.regions.density",
    "aebench.metrics.latent",
    "aebench.metrics.distribution",
    "aebench.metrics.memorisation",
    "aebench.metrics.distances",
    "aebench.metrics.image",
    "aebench.extractors.inception",
    "aebench.extractors.fast",
    "aebench.extractors.domain",
)

# kind -> (hook name, base class import path)
KINDS = {
    "sampler": ("register_samplers", "aebench.sampler:Sampler"),
    "dataset": ("register_datasets", "aebench.dataset:DatasetSource"),
    "region": ("register_regions", "aebench.region:Region"),
    "metric": ("register_metrics", "aebench.metric:Metric"),
    "feature extractor": ("register_feature_extractors", "aebench.feature_extractor:FeatureExtractor"),
    "architecture": ("register_architectures", "aebench.model:Architecture"),
}

# Kinds whose names share one namespace: `--set NAME.OPTION=VALUE` finds a sampler, region, metric or feature
# extractor by its name alone, so a name is refused when two of them register it (a sampler named like a region
# would take that region's settings), and so are the owner words RunConfig.apply_assignments keeps for itself.
SHARED_NAME_KINDS = ("sampler", "region", "metric", "feature extractor")
RESERVED_NAMES = {"dataset": "the data set's options (--set dataset.OPTION=VALUE)",
                  "features": "the feature extractor's options (--set features.OPTION=VALUE)"}


# unpackaged plugin modules given with --plugin, loaded after the built-ins and installed plugins
_PLUGIN_FILES: list[Path] = []


def add_plugin_file(path: str | Path) -> None:
    """Load the plugin module at `path` (a .py file with `@hookimpl` functions) into every later registry."""
    file = Path(path).expanduser().resolve()
    if not file.is_file() or file.suffix != ".py":
        raise AebenchError(f"--plugin {path}: not a Python file; give the path of a .py module with @hookimpl functions.")
    if file not in _PLUGIN_FILES:
        _PLUGIN_FILES.append(file)
        get_registry.cache_clear()
        get_plugin_manager.cache_clear()


def _load_file(pm: pluggy.PluginManager, file: Path) -> None:
    name = f"aebench_plugin_file_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has a loader
        raise AebenchError(f"--plugin {file}: cannot be imported as a module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise AebenchError(f"--plugin {file} failed to import: {type(exc).__name__}: {exc}. Fix that file.") from exc
    pm.register(module, name=str(file))


def _entry_point_names() -> set[str]:
    return {ep.name for ep in importlib.metadata.entry_points(group="aebench")}


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("aebench")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if os.environ.get("AEBENCH_NO_PLUGINS", "").strip() not in ("", "0"):
        pass
    elif "AEBENCH_LOAD_PLUGINS" in os.environ:
        wanted = {n.strip() for n in os.environ["AEBENCH_LOAD_PLUGINS"].split(",") if n.strip()}
        unknown = sorted(wanted - _entry_point_names())
        if unknown:
            available = ", ".join(sorted(_entry_point_names())) or "(none installed)"
            warnings.warn(f"AEBENCH_LOAD_PLUGINS names {', '.join(repr(n) for n in unknown)}, which no installed "
                          f"plugin provides; installed plugins: {available}.", UserWarning, stacklevel=2)
        for name in sorted(wanted):
            pm.load_setuptools_entrypoints("aebench", name=name)
    else:
        pm.load_setuptools_entrypoints("aebench")
    for file in _PLUGIN_FILES:
        _load_file(pm, file)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise AebenchError(f"A plugin implements an unknown hook: {exc}. Fix the hook name in that plugin.") from None
    return pm


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager; entry points are loaded once."""
    return _new_manager()


@lru_cache(maxsize=None)
def get_registry(kind: str) -> Registry:
    """Every registered object of `kind` ('sampler', 'dataset', ...), built once per process. A kind of
    SHARED_NAME_KINDS is checked against the others: no name in two of them, none of RESERVED_NAMES."""
    if kind not in KINDS:
        raise KeyError(kind)
    registry = _build_registry(kind)
    if kind in SHARED_NAME_KINDS:
        check_shared_names({other: registry if other == kind else _build_registry(other) for other in SHARED_NAME_KINDS})
    return registry


def check_shared_names(registries: dict[str, Registry]) -> None:
    """Raise DuplicateNameError when two kinds of `registries` share a name, or one uses a reserved word."""
    seen: dict[str, tuple[str, str]] = {}  # name -> (kind, plugin)
    for kind, registry in registries.items():
        for entry in registry.entries():
            if entry.name in RESERVED_NAMES:
                raise DuplicateNameError(
                    f"Plugin '{entry.plugin}' registered {kind} '{entry.name}', a name kept for {RESERVED_NAMES[entry.name]}; "
                    f"rename the {kind}.")
            if entry.name in seen:
                other_kind, other_plugin = seen[entry.name]
                raise DuplicateNameError(
                    f"The name '{entry.name}' is registered twice: as a {other_kind} by plugin '{other_plugin}' and as "
                    f"a {kind} by plugin '{entry.plugin}', so --set {entry.name}.OPTION=VALUE could not tell them "
                    f"apart; rename one of them or uninstall one plugin.")
            seen[entry.name] = (kind, entry.plugin)


def _build_registry(kind: str) -> Registry:
    hook_name, base_path = KINDS[kind]
    registry: Registry = Registry(kind, base=_import(base_path))
    pm = get_plugin_manager()
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        try:
            impl.function(register=lambda obj, _p=impl.plugin_name: registry.add(obj, plugin=_p))
        except AebenchError:
            raise
        except Exception as exc:
            raise AebenchError(
                f"Plugin '{impl.plugin_name}' failed in {hook_name}: {type(exc).__name__}: {exc}. "
                f"Fix or uninstall that plugin (AEBENCH_NO_PLUGINS=1 skips installed plugins)."
            ) from exc
    return registry


def reset() -> None:
    """Forget the loaded plugins and --plugin files (tests install plugins at run time)."""
    _PLUGIN_FILES.clear()
    get_registry.cache_clear()
    get_plugin_manager.cache_clear()


def plugin_table() -> list[dict[str, Any]]:
    """One row per plugin: its name, where it comes from, and what it registered."""
    pm = get_plugin_manager()
    dists = {id(p): d for p, d in pm.list_plugin_distinfo()}
    rows: dict[str, dict[str, Any]] = {name: {"name": name, "builtin": name in DEFAULT_PLUGINS, "version": None, "registered": {}}
            for name, _ in pm.list_name_plugin()}
    for plugin_name, plugin in pm.list_name_plugin():
        dist = dists.get(id(plugin))
        if dist is not None:
            rows[plugin_name]["version"] = dist.version
            rows[plugin_name]["distribution"] = dist.project_name if hasattr(dist, "project_name") else dist.metadata["name"]
    for kind in KINDS:
        for entry in get_registry(kind).entries():
            rows.setdefault(entry.plugin, {"name": entry.plugin, "builtin": False, "version": None, "registered": {}})
            rows[entry.plugin]["registered"].setdefault(kind, []).append(entry.name)
    return list(rows.values())
