"""The small tables: recipients, decisions, stays, providers and provider choices,
folded from the recipient and provider events.
"""


from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.json as pajson

from ersattning.domain import (
    Area,
    Category,
    DepartureReason,
    Ownership,
    Per,
    StayKind,
)

# ---------------------------------------------------------------------------
# the small tables


_TEXT_FIELDS = (
    "pseudonym", "area", "provider", "decision_id", "category", "per", "stay_id", "kind", "reason", "code", "name", "ownership",
    "enrolled_on", "chosen_on", "valid_from", "valid_to", "ended_on", "start", "end", "departed_on",
)  # fmt: skip


def _fields(df: pd.DataFrame, event: str) -> pd.DataFrame:
    """The events of one type with their fields as columns (JSON parsed in bulk by Arrow)."""
    part = df[df["event"] == event]
    if not len(part):
        return pd.DataFrame()
    # text fields stay text (a pseudonym of digits must not become a number); the rest is inferred
    keys = list(json.loads(part["fields"].iloc[0]))  # every event of one type has the same fields
    text = pa.schema([(name, pa.string()) for name in keys if name in _TEXT_FIELDS])
    table = pajson.read_json(
        pa.BufferReader("\n".join(part["fields"]).encode()),
        parse_options=pajson.ParseOptions(explicit_schema=text, unexpected_field_behavior="infer"),
    )
    fields = table.to_pandas(types_mapper=None)
    fields.index = part.index
    for c in fields.columns:
        if fields[c].dtype == object and len(fields) and isinstance(fields[c].iloc[0], (list, np.ndarray)):
            fields[c] = fields[c].map(lambda x: list(x) if x is not None else [])
    return pd.concat([part[["notification_id", "aggregate", "version", "recorded_at"]], fields], axis=1)


def _date(s: pd.Series | np.ndarray) -> pd.Series:
    """Dates as parsed (Arrow reads ISO dates as timestamps) or as ISO strings → datetime64[s]."""
    s = pd.Series(s) if not isinstance(s, pd.Series) else s
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.astype("datetime64[s]")
    return pd.to_datetime(s, format="%Y-%m-%d").astype("datetime64[s]")


def fold_entities(events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    ev = events.sort_values("notification_id", kind="stable")
    out: dict[str, pd.DataFrame] = {}
    p = _fields(ev, "Provider.Registered")
    out["providers"] = (
        pd.DataFrame(
            {
                "provider": p["code"].astype(str),
                "name": p["name"].astype(str),
                "ownership": pd.Categorical(p["ownership"], categories=[o.value for o in Ownership]),
                "teams": p["teams"].map(len).astype(np.int32),
            }
        ).reset_index(drop=True)
        if len(p)
        else pd.DataFrame({"provider": pd.Series(dtype=str), "name": pd.Series(dtype=str), "ownership": pd.Categorical([], categories=[o.value for o in Ownership]), "teams": pd.Series(dtype=np.int32)})
    )
    e = _fields(ev, "Recipient.Enrolled")
    rec = pd.DataFrame(
        {
            "recipient": e["aggregate"].astype(str) if len(e) else pd.Series(dtype=str),
            "pseudonym": e["pseudonym"].astype(str) if len(e) else pd.Series(dtype=str),
            "birth_year": e["birth_year"].astype(np.int16) if len(e) else pd.Series(dtype=np.int16),
            "area": pd.Categorical(e["area"] if len(e) else [], categories=[a.value for a in Area]),
            "enrolled_on": _date(e["enrolled_on"]) if len(e) else pd.Series(dtype="datetime64[s]"),
        }
    ).reset_index(drop=True)
    ch = _fields(ev, "Recipient.ProviderChosen")
    choices = (
        pd.DataFrame({"recipient": ch["aggregate"].astype(str), "provider": ch["provider"].astype(str), "chosen_on": _date(ch["chosen_on"])}).reset_index(drop=True)
        if len(ch)
        else pd.DataFrame({"recipient": pd.Series(dtype=str), "provider": pd.Series(dtype=str), "chosen_on": pd.Series(dtype="datetime64[s]")})
    )
    out["provider_choices"] = choices
    d = _fields(ev, "Recipient.Departed")
    departed = pd.DataFrame({"recipient": d["aggregate"], "departed_on": _date(d["departed_on"]), "departure_reason": d["reason"]}) if len(d) else pd.DataFrame(columns=["recipient", "departed_on", "departure_reason"])
    rec = rec.merge(departed, on="recipient", how="left")
    rec["departed_on"] = rec["departed_on"].astype("datetime64[s]")
    rec["departure_reason"] = pd.Categorical(rec["departure_reason"], categories=[r.value for r in DepartureReason])
    latest = choices.drop_duplicates("recipient", keep="last").set_index("recipient")["provider"]
    rec["provider"] = rec["recipient"].map(latest)
    out["recipients"] = rec

    g = _fields(ev, "Recipient.DecisionGranted")
    r = _fields(ev, "Recipient.DecisionRevised")
    en = _fields(ev, "Recipient.DecisionEnded")
    cols = ["recipient", "decision_id", "category", "granted_minutes", "per", "valid_from", "valid_to"]
    if len(g):
        seg = pd.concat(
            [
                pd.DataFrame({"recipient": g["aggregate"], "decision_id": g["decision_id"], "category": g["category"], "granted_minutes": g["granted_minutes"], "per": g["per"], "valid_from": g["valid_from"], "end": g["valid_to"], "nid": g["notification_id"]}),
                pd.DataFrame({"recipient": r["aggregate"], "decision_id": r["decision_id"], "granted_minutes": r["granted_minutes"], "valid_from": r["valid_from"], "nid": r["notification_id"]}) if len(r) else pd.DataFrame(),
            ],
            ignore_index=True,
        )
        seg = seg.sort_values(["recipient", "decision_id", "valid_from", "nid"], kind="stable")
        key = ["recipient", "decision_id"]
        seg[["category", "per", "end"]] = seg.groupby(key)[["category", "per", "end"]].ffill()
        nxt = seg.groupby(key)["valid_from"].shift(-1)
        if len(en):
            ended = en.drop_duplicates(["aggregate", "decision_id"], keep="last").rename(columns={"aggregate": "recipient"})[["recipient", "decision_id", "ended_on"]]
            stop = seg[key].merge(ended, on=key, how="left")["ended_on"].to_numpy()
        else:
            stop = np.full(len(seg), None, dtype=object)
        # a segment ends where the next revision starts, else where the decision ended, else at its own end
        seg["valid_to"] = _date(nxt).fillna(_date(pd.Series(stop, index=seg.index))).fillna(_date(seg["end"]))
        decisions = pd.DataFrame(
            {
                "recipient": seg["recipient"].astype(str),
                "decision_id": seg["decision_id"].astype(str),
                "category": pd.Categorical(seg["category"], categories=[c.value for c in Category]),
                "granted_minutes": seg["granted_minutes"].astype(np.int32),
                "per": pd.Categorical(seg["per"], categories=[x.value for x in Per]),
                "valid_from": _date(seg["valid_from"]),
                "valid_to": seg["valid_to"].astype("datetime64[s]"),
            }
        ).reset_index(drop=True)
    else:
        decisions = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out["decisions"] = decisions

    ss = _fields(ev, "Recipient.StayStarted")
    se = _fields(ev, "Recipient.StayEnded")
    if len(ss):
        stays = pd.DataFrame({"recipient": ss["aggregate"].astype(str), "stay_id": ss["stay_id"].astype(str), "kind": pd.Categorical(ss["kind"], categories=[k.value for k in StayKind]), "start": _date(ss["start"])})
        if len(se):
            ends = se.rename(columns={"aggregate": "recipient"})[["recipient", "stay_id", "end"]].drop_duplicates(["recipient", "stay_id"], keep="last")
            end = stays[["recipient", "stay_id"]].merge(ends, on=["recipient", "stay_id"], how="left")["end"].to_numpy()
        else:
            end = np.full(len(stays), None, dtype=object)
        stays["end"] = _date(pd.Series(end, index=stays.index))
        out["stays"] = stays.reset_index(drop=True)
    else:
        out["stays"] = pd.DataFrame({"recipient": pd.Series(dtype=str), "stay_id": pd.Series(dtype=str), "kind": pd.Categorical([], categories=[k.value for k in StayKind]), "start": pd.Series(dtype="datetime64[s]"), "end": pd.Series(dtype="datetime64[s]")})
    return out
