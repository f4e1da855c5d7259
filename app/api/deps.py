"""FastAPI dependencies as `Annotated` aliases, so route signatures read as prose."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.decisions.service import DecisionService
from app.errors import DependencyUnavailable
from app.policy.engine import PolicyEngine
from app.services import Services


async def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise DependencyUnavailable("service is starting")
    return services


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(services: Annotated[Services, Depends(get_services)]) -> PolicyEngine:
    return services.engine


async def get_decisions(services: Annotated[Services, Depends(get_services)]) -> DecisionService:
    return services.decisions


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[PolicyEngine, Depends(get_engine)]
DecisionsDep = Annotated[DecisionService, Depends(get_decisions)]
