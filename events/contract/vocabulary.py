"""The closed vocabularies of the event contract (docs/events.md).

Each vocabulary is a tuple in the contract's order (docs/events.md lists them
from here), so that projections that need "a row for every group" keep that order.
"""

from __future__ import annotations

# ONS GSS codes of the 32 London boroughs. The City of London (E09000001) has
# its own police force and is rejected.
CITY_OF_LONDON = "E09000001"
BOROUGHS: tuple[str, ...] = tuple(f"E090000{n:02d}" for n in range(2, 34))
BOROUGH_NAMES: dict[str, str] = dict(zip(BOROUGHS, (
    "Barking and Dagenham", "Barnet", "Bexley", "Brent", "Bromley", "Camden", "Croydon",
    "Ealing", "Enfield", "Greenwich", "Hackney", "Hammersmith and Fulham", "Haringey",
    "Harrow", "Havering", "Hillingdon", "Hounslow", "Islington", "Kensington and Chelsea",
    "Kingston upon Thames", "Lambeth", "Lewisham", "Merton", "Newham", "Redbridge",
    "Richmond upon Thames", "Southwark", "Sutton", "Tower Hamlets", "Waltham Forest",
    "Wandsworth", "Westminster",
)))
LONDON = "LONDON"  # pan-London scope, used in projections, never in events

THEMES: tuple[str, ...] = (
    "anti_social_behaviour", "burglary", "robbery", "vehicle_crime", "violence",
    "knife_crime", "gun_crime", "domestic_abuse", "sexual_offences", "hate_crime",
    "drugs", "youth_crime", "road_safety", "fraud", "terrorism",
    "police_visibility", "response_times", "community_engagement",
    "trust_confidence", "stop_and_search", "other",
)

CHANNELS: tuple[str, ...] = (
    "consultative_group", "ward_panel", "public_meeting", "online_survey",
    "focus_group", "written_submission", "civic_forum", "youth_engagement",
    "cdrp_consultation",
)

AGE_BANDS: tuple[str, ...] = ("16-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS: tuple[str, ...] = ("female", "male", "other")
ETHNIC_GROUPS: tuple[str, ...] = ("asian", "black", "mixed", "white", "other")
DISABILITY: tuple[str, ...] = ("yes", "no")

# Inclusion monitoring dimensions, in the contract's order.
DEMOGRAPHIC_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "age_band": AGE_BANDS,
    "gender": GENDERS,
    "ethnic_group": ETHNIC_GROUPS,
    "disability": DISABILITY,
}

# Timetable stages, in the order the cycle runs through them.
STAGES: tuple[str, ...] = (
    "brief", "programme_approval", "fieldwork", "analysis",
    "feedback_1", "priorities", "feedback_2", "publication",
)

BODIES: tuple[str, ...] = ("planning_panel", "consultation_committee", "csmb", "authority")

INDICATORS: tuple[str, ...] = (
    "good_job", "trust", "listens", "relied_on", "treats_fairly",
    "deals_with_matters", "informed",
)
