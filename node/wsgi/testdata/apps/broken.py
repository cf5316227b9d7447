import this_module_does_not_exist_gouwsgi  # noqa: F401


def application(env, sr):
    sr("200 OK", [])
    return [b"unreachable"]
