"""Policies: one interface, one action-space registry, one registry of policy types.

- :mod:`.base`: the :class:`~.base.Policy` protocol (observation in -> ``ActionChunk`` out);
- :mod:`.action_spaces`: every action space by id (dims, names, units);
- :mod:`.registry`: policy types by name, extendable through Python entry points;
- one folder per policy type, ``<type>/configuration_<type>.py`` (a dataclass, no torch) and
  ``<type>/modeling_<type>.py`` (the torch network; the only place here torch may be imported).

Nothing is imported here, so ``import human_video_policy.policies.x`` stays light.
"""
