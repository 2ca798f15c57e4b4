"""GraphQL errors shaped like the platform's: a French message and ``extensions.code``."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

__all__ = ["bad_user_input", "forbidden", "not_found", "unauthenticated", "zod_error"]

SEAL_HEADER = ("Erreur, impossible de valider le bordereau car des champs obligatoires ne sont pas "
               "renseignés.\nErreur(s): ")


def bad_user_input(message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", **extensions})


def zod_error(issues: list[dict[str, Any]]) -> GraphQLError:
    """Like the zod-validated kinds: messages joined, the issues listed with their paths."""
    message = "\n".join(f"{'.'.join(str(p) for p in issue['path'])} : {issue['message']}" for issue in issues)
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", "issues": issues})


def forbidden(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "FORBIDDEN"})


def unauthenticated() -> GraphQLError:
    return GraphQLError("Vous n'êtes pas connecté.", extensions={"code": "UNAUTHENTICATED"})


def not_found(kind_label: str, key: str) -> GraphQLError:
    return GraphQLError(f"Le {kind_label} avec l'identifiant \"{key}\" n'existe pas.",
                        extensions={"code": "BAD_USER_INPUT"})
