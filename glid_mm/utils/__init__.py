from glid_mm.utils.data_root import (DATA_ENV, DEFAULT_DATA_ROOT,
                                     check_data_roots)
from glid_mm.utils.version_guard import (EnvironmentMismatchError,
                                         check_environment)

__all__ = [
    'DATA_ENV', 'DEFAULT_DATA_ROOT', 'check_data_roots',
    'EnvironmentMismatchError', 'check_environment'
]
