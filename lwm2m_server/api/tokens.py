"""``/api/v1/tokens``: list, create and revoke API tokens (``admin`` scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..store.tokens import TokenError, create_token, list_tokens, revoke_token
from .deps import DbInt, EngineDep, require_scope
from .errors import BadRequest, NotFound

__all__ = ["router"]

router = APIRouter(prefix="/tokens", tags=["tokens"], dependencies=[Depends(require_scope("admin"))])


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["read"], min_length=1)


@router.get("", summary="List tokens (never their values)")
def get_tokens(engine: EngineDep, include_revoked: bool = False) -> list[dict[str, Any]]:
    return [t.summary() for t in list_tokens(engine, include_revoked=include_revoked)]


@router.post("", status_code=201, summary="Create a token; the response shows it once")
def post_token(body: TokenCreate, engine: EngineDep) -> dict[str, Any]:
    try:
        row, plaintext = create_token(engine, body.name, body.scopes)
    except TokenError as e:
        raise BadRequest(str(e)) from None
    return {**row.summary(), "token": plaintext}


@router.delete("/{token_id}", summary="Revoke a token")
def delete_token(token_id: DbInt, engine: EngineDep) -> dict[str, Any]:
    try:
        return revoke_token(engine, token_id).summary()
    except TokenError as e:
        raise NotFound(str(e)) from None
