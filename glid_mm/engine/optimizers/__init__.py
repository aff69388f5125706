from .partwise_constructor import PartwiseOptimWrapperConstructor

__all__ = ['PartwiseOptimWrapperConstructor']
