"""Config profiles shipped with the package: `walkrank run --config local|cluster`.

A profile changes engine settings only (master, memory, partitions, LLM actors); the
built-in defaults in pipelines/config/sections.py are the recommendation profile.
"""
