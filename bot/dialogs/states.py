"""The names of the prompts a user can be at (stored in users.dialog_state).

The values are stored: renaming one strands the users who are at that prompt.
"""

ONBOARDING_CONSENT = "onboarding_consent"
ONBOARDING_GUIDE = "onboarding_guide"
ONBOARDING_PHASE = "onboarding_phase"
CHOOSING_GUIDE = "choosing_guide"
CHOOSING_PHASE = "choosing_phase"
CONFIRM_DELETE = "confirm_delete"
CONFIRM_REPLACE = "confirm_replace"
CONFIRM_WITHDRAW = "confirm_withdraw"
