"""Every Slack identifier the bot uses, defined once: commands, callback_ids, action_ids and block_ids."""

from __future__ import annotations

# --- slash commands (manifest.yml must declare exactly these) ---
MFI = "/mfi"
MEASURE = "/measure"
PDSA = "/pdsa"
EQUITY = "/equity"
COMMANDS = (MFI, MEASURE, PDSA, EQUITY)

# --- projects (/mfi) ---
CB_PROJECT_NEW = "project_new"
CB_PROJECT_EDIT = "project_edit"
B_PROJECT_NAME = "project_name"
B_PROJECT_AIM = "project_aim"
B_PROJECT_FOCUS = "project_focus_groups"
B_PROJECT_REFERENCE = "project_reference"
B_PROJECT_BASELINE = "project_baseline"
B_PROJECT_TARGET = "project_target"
B_PROJECT_TARGET_DATE = "project_target_date"
B_PROJECT_LEADS = "project_leads"
B_PROJECT_PARTNERS = "project_partners"
B_PROJECT_RACISM = "project_racism_context"
A_INPUT = "input"  # the action_id of the single element inside an input block
A_OPEN_PROJECT_EDIT = "open_project_edit"
A_OPEN_MEASURE_NEW = "open_measure_new"
A_OPEN_PDSA_NEW = "open_pdsa_new"
A_POST_STATUS = "post_project_card"

# --- measures (/measure) ---
CB_MEASURE_NEW = "measure_new"
CB_MEASURE_LOG = "measure_log"
CB_MEASURE_IMPORT = "measure_import"
B_MEASURE_NAME = "measure_name"
B_MEASURE_TYPE = "measure_type"
B_MEASURE_KIND = "measure_kind"
B_MEASURE_NUMERATOR_DEF = "measure_numerator_definition"
B_MEASURE_DENOMINATOR_DEF = "measure_denominator_definition"
B_MEASURE_DIRECTION = "measure_direction"
B_MEASURE_REFERENCE = "measure_reference"
B_MEASURE_PERIOD = "measure_period"
B_MEASURE_TARGET = "measure_target"
B_LOG_MEASURE = "log_measure"
B_LOG_PERIOD = "log_period"
B_LOG_ROW_PREFIX = "log_row_"  # + group code, + "_num" / "_den" / "_val"
B_IMPORT_FILE = "import_file"
B_IMPORT_MEASURE = "import_measure"
A_LOG_FULL_LIST = "log_full_list"
A_LOG_MEASURE_PICKED = "log_measure_picked"
A_UNDO_BATCH = "undo_batch"

# --- equity (/equity) ---
A_EQUITY_VIEW = "equity_view"  # value: JSON {"measure": id, "view": "groups" | "gaps" | "completeness", "window": n}
A_EQUITY_WINDOW = "equity_window"

# --- PDSA cycles (/pdsa) ---
CB_PDSA_NEW = "pdsa_new"
CB_PDSA_DO = "pdsa_do"
CB_PDSA_STUDY = "pdsa_study"
CB_PDSA_ACT = "pdsa_act"
A_PDSA_DO = "pdsa_do_open"
A_PDSA_STUDY = "pdsa_study_open"
A_PDSA_ACT = "pdsa_act_open"
A_PDSA_NEXT = "pdsa_next_cycle"

# --- prompts, partners and schedules ---
CB_SCHEDULE = "schedule_settings"
CB_ANSWER = "prompt_answer"
CB_PARTNERS = "partners_add"
A_ANSWER = "prompt_answer_open"
A_PARTNER_CONSENT_YES = "partner_consent_yes"
A_PARTNER_CONSENT_NO = "partner_consent_no"
A_PARTNER_PAUSE = "partner_pause"
A_PARTNER_RESUME = "partner_resume"
A_PARTNER_STOP = "partner_stop"
A_PROMPT_PIN = "prompt_pin"
A_PROMPT_SKIP = "prompt_skip"
A_EXPORT_ANSWERS = "export_answers"

# --- data ownership ---
CB_DELETE_CONFIRM = "project_delete_confirm"
A_EXPORT = "project_export"

# Every callback_id and action_id, for the manifest/handler consistency test.
CALLBACK_IDS = tuple(value for name, value in dict(globals()).items() if name.startswith("CB_"))
ACTION_IDS = tuple(
    value for name, value in dict(globals()).items() if name.startswith("A_") and name != "A_INPUT"
)
