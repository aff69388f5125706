from glid_mm.engine.optimizers.partwise_constructor import \
    PartwiseOptimWrapperConstructor

__all__ = ['PartwiseOptimWrapperConstructor']
