"""aebench: benchmark strategies for sampling the latent space of a trained standard autoencoder."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aebench")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from aebench.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
