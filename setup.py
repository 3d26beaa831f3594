"""The one compiled part: the agent's JSON field extractor (jenga_edge/_fastjson.c).

Optional on purpose: without a C compiler the install still succeeds and
jenga_edge.decode uses its msgspec path for every line (same results, slower).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("jenga_edge._fastjson", ["jenga_edge/_fastjson.c"],
                             extra_compile_args=["-O2"], optional=True)])
