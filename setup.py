"""The compiled parts of the edge agent (both optional on purpose: without a C
compiler the install still succeeds and the agent uses its pure-Python paths,
same results, slower):

* jenga_edge.native._fastjson  the decoder's tier 1: JSON lines -> numpy columns
* jenga_edge.native._syncer    the sinks' fsync thread, which never takes the GIL
* jenga_edge.native._windows   the window features' per-row kernels
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "jenga_edge.native._fastjson", ["jenga_edge/native/_fastjson.c"], extra_compile_args=["-O2"], optional=True
        ),
        Extension(
            "jenga_edge.native._syncer", ["jenga_edge/native/_syncer.c"], extra_compile_args=["-O2"], optional=True
        ),
        Extension(
            "jenga_edge.native._windows", ["jenga_edge/native/_windows.c"], extra_compile_args=["-O2"], optional=True
        ),
    ]
)
