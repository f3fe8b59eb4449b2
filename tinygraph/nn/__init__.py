"""Neural-network building blocks: Modules, layers and functional losses."""
from .module import Module, ModuleList, Parameter

__all__ = ["Module", "ModuleList", "Parameter"]
