"""The Let'sTrade identity (sign-in, bearer tokens) and customer store, shared by `letstrade-pos`
and `letstrade-channels`: one store for both APIs, created once per reset through `Shared`."""
