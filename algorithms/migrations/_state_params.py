"""What the data migrations that retune a shipped algorithm share (not a migration: Django's
loader skips modules whose names start with ``_``). Frozen with the migrations that call it:
change it only as a migration would be changed, never to alter what an applied one did."""
from django.db.models import F


def change_states(apps, slug: str, params_of) -> None:
    """Give each state of algorithm ``slug`` the params ``params_of(state name, its params)``
    returns (``None`` leaves the state as it is), then bump the algorithm's version: sessions
    re-read the blueprint (params are parsed once per version). No such algorithm: nothing."""
    Algorithm = apps.get_model("algorithms", "Algorithm")
    State = apps.get_model("algorithms", "State")
    algorithm = Algorithm.objects.filter(slug=slug).first()
    if algorithm is None:
        return
    for state in State.objects.filter(algorithm=algorithm):
        params = params_of(state.name, dict(state.params))
        if params is not None:
            state.params = params
            state.save(update_fields=["params"])
    Algorithm.objects.filter(pk=algorithm.pk).update(version=F("version") + 1)


def set_param(apps, slug: str, name: str, value) -> None:
    """Param ``name`` set to ``value`` in every state of algorithm ``slug`` (``None``: removed)."""
    def with_value(_, params):
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
        return params

    change_states(apps, slug, with_value)
