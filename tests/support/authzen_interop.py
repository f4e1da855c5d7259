"""The OpenID AuthZEN interop scenarios' request/response pairs (openid/authzen, interop/).

Transcribed from the working group's decision files so the tests hold the same pairs the
official harnesses send: the Todo 1.0 evaluations (authzen-todo-backend/test, 40 cases),
the API gateway evaluations (authzen-api-gateways/test-harness/test/decisions.json, 25)
and the search scenario (authzen-search-demo/test/{subject,resource,action}: 60 + 18 + 120).
"""

from __future__ import annotations

from typing import Any

PIDS = {
    "rick": "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
    "morty": "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
    "summer": "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
    "beth": "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
    "jerry": "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
}
EMAILS = {
    "rick": "rick@the-citadel.com",
    "morty": "morty@the-citadel.com",
    "summer": "summer@the-smiths.com",
    "beth": "beth@the-smiths.com",
    "jerry": "jerry@the-smiths.com",
}
TODO_IDS = {  # the todo each case's owner has in the 1.0 decision file
    "rick": "7240d0db-8ff0-41ec-98b2-34a096273b92",
    "morty": "7240d0db-8ff0-41ec-98b2-34a096273b91",
    "summer": "7240d0db-8ff0-41ec-98b2-34a096273b93",
    "beth": "7240d0db-8ff0-41ec-98b2-34a096273b94",
    "jerry": "7240d0db-8ff0-41ec-98b2-34a096273b95",
}

# Per user, in file order: can_read_user beth, can_read_user self, can_read_todos,
# can_create_todo, can_update_todo rick's, can_update_todo own (rick: morty's),
# can_delete_todo rick's, can_delete_todo own (rick: morty's).
TODO_EXPECTED = {
    "rick": [True, True, True, True, True, True, True, True],
    "morty": [True, True, True, True, False, True, False, True],
    "summer": [True, True, True, True, False, True, False, True],
    "beth": [True, True, True, False, False, False, False, False],
    "jerry": [True, True, True, False, False, False, False, False],
}


def _todo(owner: str) -> dict[str, Any]:
    return {"type": "todo", "id": TODO_IDS[owner], "properties": {"ownerID": EMAILS[owner]}}


def todo_cases() -> list[tuple[dict[str, Any], bool]]:
    cases = []
    for user, expected in TODO_EXPECTED.items():
        own = "morty" if user == "rick" else user
        subject = {"type": "user", "id": PIDS[user]}
        resources = [
            ("can_read_user", {"type": "user", "id": EMAILS["beth"]}),
            ("can_read_user", {"type": "user", "id": EMAILS[user]}),
            ("can_read_todos", {"type": "todo", "id": "todo-1"}),
            ("can_create_todo", {"type": "todo", "id": "todo-1"}),
            ("can_update_todo", _todo("rick")),
            ("can_update_todo", _todo(own)),
            ("can_delete_todo", _todo("rick")),
            ("can_delete_todo", _todo(own)),
        ]
        for (action, resource), want in zip(resources, expected, strict=True):
            request = {"subject": subject, "action": {"name": action}, "resource": resource}
            cases.append((request, want))
    return cases


GATEWAY_ROUTES = [
    ("GET", "/users/{userId}"),
    ("GET", "/todos"),
    ("POST", "/todos"),
    ("PUT", "/todos/{todoId}"),
    ("DELETE", "/todos/{todoId}"),
]
GATEWAY_EXPECTED = {
    "rick": [True] * 5,
    "morty": [True] * 5,
    "summer": [True] * 5,
    "beth": [True, True, False, False, False],
    "jerry": [True, True, False, False, False],
}


def gateway_cases() -> list[tuple[dict[str, Any], bool]]:
    cases = []
    for user, expected in GATEWAY_EXPECTED.items():
        for (method, route), want in zip(GATEWAY_ROUTES, expected, strict=True):
            request = {
                "subject": {"type": "identity", "id": PIDS[user]},
                "action": {"name": method},
                "resource": {"type": "route", "id": route},
            }
            cases.append((request, want))
    return cases


# Search scenario, subject search expectations: record -> action -> users allowed.
SEARCH_SUBJECTS: dict[str, dict[str, list[str]]] = {
    "101": {"view": ["alice", "bob", "carol", "dan"], "edit": ["alice"], "delete": ["alice"]},
    "102": {"view": ["alice", "bob", "carol", "dan"], "edit": ["bob"], "delete": ["bob"]},
    "103": {"view": ["alice", "bob", "carol", "dan"], "edit": ["carol"], "delete": ["carol"]},
    "104": {"view": ["alice", "dan", "felix"], "edit": ["dan"], "delete": ["dan"]},
    "105": {"view": ["alice", "bob", "carol", "dan", "erin"], "edit": ["erin"], "delete": ["erin"]},
    "106": {"view": ["alice", "dan", "felix"], "edit": ["felix"], "delete": ["felix"]},
    "107": {"view": ["alice", "dan"], "edit": ["alice"], "delete": ["alice"]},
    "108": {"view": ["alice", "bob", "carol", "dan"], "edit": ["bob"], "delete": ["bob"]},
    "109": {"view": ["alice", "carol", "dan", "felix"], "edit": ["carol"], "delete": ["carol"]},
    "110": {"view": ["alice", "dan"], "edit": ["alice", "dan"], "delete": ["dan"]},
    "111": {"view": ["alice", "dan", "erin", "felix"], "edit": ["erin"], "delete": ["erin"]},
    "112": {
        "view": ["alice", "bob", "carol", "dan", "felix"],
        "edit": ["felix"],
        "delete": ["felix"],
    },
    "113": {"view": ["alice", "dan"], "edit": ["alice"], "delete": ["alice"]},
    "114": {"view": ["alice", "bob", "dan", "felix"], "edit": ["bob"], "delete": ["bob"]},
    "115": {
        "view": ["alice", "carol", "dan", "erin"],
        "edit": ["carol", "dan"],
        "delete": ["carol"],
    },
    "116": {"view": ["alice", "bob", "carol", "dan"], "edit": ["dan"], "delete": ["dan"]},
    "117": {"view": ["alice", "bob", "carol", "dan", "erin"], "edit": ["erin"], "delete": ["erin"]},
    "118": {"view": ["alice", "dan", "felix"], "edit": ["felix"], "delete": ["felix"]},
    "119": {"view": ["alice", "bob", "carol", "dan"], "edit": ["alice"], "delete": ["alice"]},
    "120": {"view": ["alice", "bob", "dan", "felix"], "edit": ["bob"], "delete": ["bob"]},
}
# Resource search expectations (authzen-search-demo/test/resource/results.json), user ->
# action -> records; they are the transpose of the table above, and held as written.
SEARCH_RESOURCES: dict[str, dict[str, list[str]]] = {
    "alice": {
        "view": [str(n) for n in range(101, 121)],
        "edit": ["101", "107", "110", "113", "119"],
        "delete": ["101", "107", "113", "119"],
    },
    "bob": {
        "view": ["101", "102", "103", "105", "108", "112", "114", "116", "117", "119", "120"],
        "edit": ["102", "108", "114", "120"],
        "delete": ["102", "108", "114", "120"],
    },
    "carol": {
        "view": ["101", "102", "103", "105", "108", "109", "112", "115", "116", "117", "119"],
        "edit": ["103", "109", "115"],
        "delete": ["103", "109", "115"],
    },
    "dan": {
        "view": [str(n) for n in range(101, 121)],
        "edit": ["104", "110", "115", "116"],
        "delete": ["104", "110", "116"],
    },
    "erin": {
        "view": ["105", "111", "115", "117"],
        "edit": ["105", "111", "117"],
        "delete": ["105", "111", "117"],
    },
    "felix": {
        "view": ["104", "106", "109", "111", "112", "114", "118", "120"],
        "edit": ["106", "112", "118"],
        "delete": ["106", "112", "118"],
    },
}
SEARCH_USERS = ["alice", "bob", "carol", "dan", "erin", "felix"]
SEARCH_ACTIONS = ["delete", "edit", "view"]


def subject_search_cases() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (
            {
                "resource": {"type": "record", "id": record},
                "action": {"name": action},
                "subject": {"type": "user"},
            },
            {"results": [{"type": "user", "id": u} for u in users]},
        )
        for record, actions in SEARCH_SUBJECTS.items()
        for action, users in actions.items()
    ]


def resource_search_cases() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (
            {
                "subject": {"type": "user", "id": user},
                "action": {"name": action},
                "resource": {"type": "record"},
            },
            {"results": [{"type": "record", "id": r} for r in records]},
        )
        for user, actions in SEARCH_RESOURCES.items()
        for action, records in actions.items()
    ]


def action_search_cases() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(user, record) -> the actions the subject table allows (the action results file)."""
    cases = []
    for user in SEARCH_USERS:
        for record, actions in SEARCH_SUBJECTS.items():
            names = [a for a in SEARCH_ACTIONS if user in actions[a]]
            request = {
                "subject": {"type": "user", "id": user},
                "resource": {"type": "record", "id": record},
            }
            cases.append((request, {"results": [{"name": n} for n in names]}))
    return cases
