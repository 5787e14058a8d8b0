"""Builds offgen's one optional C extension; everything else is configured in pyproject.toml.

``offgen._decode`` fuses the legacy frame decode (see ``offgen/_decode.c``). It is optional: where
no C compiler is available the build skips it and offgen uses its numpy path, which gives the same
results, only slower (``offgen.data.legacy.COMPILED_DECODE`` says which one is in use).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "offgen._decode",
            sources=["offgen/_decode.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
