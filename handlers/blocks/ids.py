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
B_PROJECT_THRESHOLD = "project_disclosure_threshold"
A_INPUT = "input"  # the action_id of the single element inside an input block
A_OPEN_PROJECT_EDIT = "open_project_edit"
A_OPEN_MEASURE_NEW = "open_measure_new"
A_OPEN_PDSA_NEW = "open_pdsa_new"
A_POST_STATUS = "post_project_card"

# --- measures (/measure) ---
CB_MEASURE_NEW = "measure_new"
CB_MEASURE_LOG = "measure_log"
B_MEASURE_NAME = "measure_name"
B_MEASURE_TYPE = "measure_type"
B_MEASURE_KIND = "measure_kind"
B_MEASURE_NUMERATOR_DEF = "measure_numerator_definition"
B_MEASURE_DENOMINATOR_DEF = "measure_denominator_definition"
B_MEASURE_DIRECTION = "measure_direction"
B_MEASURE_REFERENCE = "measure_reference"
B_MEASURE_PERIOD = "measure_period"
B_MEASURE_QUARTERS = "measure_quarters"
B_MEASURE_TARGET = "measure_target"
B_LOG_MEASURE = "log_measure"
B_LOG_PERIOD = "log_period"
B_LOG_ROW_PREFIX = "log_row_"  # + group code: one "numerator/denominator" (or value) input per group
A_LOG_FULL_LIST = "log_full_list"  # value "full" or "short": switches the log form's list of groups
A_LOG_MEASURE_PICKED = "log_measure_picked"
A_UNDO_BATCH = "undo_batch"  # value: batch id
CB_MEASURE_IMPORT = "measure_import"  # the private upload form (file_input)
B_IMPORT_MEASURE = "import_measure"
B_IMPORT_FILE = "import_file"

# --- equity (/equity) ---
# value: JSON {"measure": id, "view": "groups" | "gaps" | "completeness", "window": months}. Buttons sharing an
# actions block carry "<id>_<view>" / "<id>_<months>" (action_ids must differ within a block); the listener
# matches the prefix.
A_EQUITY_VIEW = "equity_view"
A_EQUITY_WINDOW = "equity_window"
B_EQUITY_VIEWS = "equity_views"
B_EQUITY_WINDOWS = "equity_windows"
A_EQUITY_DETAILS = "equity_details"
A_EQUITY_METHODS = "equity_methods"
B_EQUITY_CHART = "equity_chart"

# --- PDSA cycles (/pdsa) ---
CB_PDSA_NEW = "pdsa_new"
CB_PDSA_DO = "pdsa_do"
CB_PDSA_STUDY = "pdsa_study"
CB_PDSA_ACT = "pdsa_act"
A_PDSA_DO = "pdsa_do_open"
A_PDSA_STUDY = "pdsa_study_open"
A_PDSA_ACT = "pdsa_act_open"
A_PDSA_NEXT = "pdsa_next_cycle"
CB_PDSA_EDIT = "pdsa_edit"
A_PDSA_EDIT = "pdsa_edit_open"
B_PDSA_TITLE = "pdsa_title"
B_PDSA_CHANGE = "pdsa_change_idea"
B_PDSA_QUESTION = "pdsa_question"
B_PDSA_MEASURES = "pdsa_measures"
B_PDSA_PREDICT_PREFIX = "pdsa_predict_"  # + group code ("ALL" for overall)
B_PDSA_WHO = "pdsa_who"
B_PDSA_WHERE = "pdsa_where"
B_PDSA_START = "pdsa_start"
B_PDSA_END = "pdsa_end"
B_PDSA_TASKS = "pdsa_tasks"
B_PDSA_INVOLVEMENT = "pdsa_involvement"
B_PDSA_BALANCING = "pdsa_balancing"
B_PDSA_CONTINUE = "pdsa_continue"
B_PDSA_DO_WHAT = "pdsa_do_what"
B_PDSA_DO_AS_PLANNED = "pdsa_do_as_planned"
B_PDSA_DO_OBSERVATIONS = "pdsa_do_observations"
B_PDSA_STUDY_MEASURE = "pdsa_study_measure"
B_PDSA_OBSERVED_PREFIX = "pdsa_observed_"  # + group code
B_PDSA_STUDY_LEARNING = "pdsa_study_learning"
B_PDSA_STUDY_NOT_FOR = (
    "pdsa_study_not_for"  # "Who did this not work for?": written to the who-is-missing register
)
B_PDSA_DECISION = "pdsa_decision"
B_PDSA_ACT_REASON = "pdsa_act_reason"
B_PDSA_ACT_INVOLVED = "pdsa_act_involved"
B_PDSA_ACT_WHO = "pdsa_act_who"
B_PDSA_ACT_HARM = "pdsa_act_harm"
B_PDSA_REBASE = "pdsa_rebase"
B_PDSA_REBASE_DATE = "pdsa_rebase_date"

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
A_PROMPT_CLEAR = "prompt_choice_clear"  # undo a pin or skip
A_PARTNER_SHARE = "partner_share"  # value: JSON {"project_id": id, "share": true | false}
B_PROMPT_CHOICE_PREFIX = "prompt_choice_"  # + project id: the Home tab's pin/skip selects
B_SCHEDULE_DAYS = "schedule_days_"  # + schedule kind (team_prompt | partner_prompt | lead_nudge)
B_SCHEDULE_TIME = "schedule_time_"  # + kind
B_SCHEDULE_EVERY = "schedule_every_"  # + kind
B_SCHEDULE_PAUSED = "schedule_paused_"  # + kind
B_SCHEDULE_TIMEZONE = "schedule_timezone"
B_SCHEDULE_OPTIONS = "schedule_options"
B_SCHEDULE_REGION = "schedule_region"
B_ANSWER_TEXT = "answer_text"
B_ANSWER_OPTIONS = "answer_options"
B_ANSWER_MODE = "answer_mode"  # too few people asked: wait anonymously, or send with a name
B_PARTNERS_USERS = "partners_users"
B_PARTNERS_ABOUT = "partners_about"  # the project in plain words, for partners
B_PARTNERS_ABOUT_OK = "partners_about_ok"  # keep a description that reads above age 11
B_PARTNERS_INVITE = "partners_invite"
B_PRIVACY_ANONYMITY = "privacy_anonymity"
B_PRIVACY_RETENTION = "privacy_retention"

# --- data ownership ---
CB_DELETE_CONFIRM = "project_delete_confirm"
A_EXPORT = "project_export"  # value: project id (the lead's Home tab)
A_DELETE = "project_delete_open"  # value: project id (the lead's Home tab)
B_DELETE_NAME = "project_delete_name"

# --- the framework's registers (/mfi bias, /mfi team, /mfi missing) ---
# Buttons carry JSON {"project_id": id} plus "entry" (the entry's number in its register) or "page".
CB_BIAS_ENTRY = "bias_entry"
CB_MISSING_ENTRY = "missing_entry"
CB_TEAM_REFLECTION = "team_reflection"
A_BIAS_ADD = "bias_add"
A_BIAS_EDIT = "bias_edit"
A_BIAS_PAGE = "bias_page"
A_MISSING_ADD = "missing_add"
A_MISSING_EDIT = "missing_edit"
A_MISSING_PAGE = "missing_page"
A_TEAM_OPEN = "team_open"
B_BIAS_KIND = "bias_kind"
B_BIAS_SUBJECT = "bias_subject"
B_BIAS_WHERE = "bias_where"
B_BIAS_EVIDENCE_KINDS = "bias_evidence_kinds"
B_BIAS_EVIDENCE = "bias_evidence"
B_BIAS_INSTITUTIONAL = "bias_institutional"
B_BIAS_ACTION = "bias_action"
B_BIAS_OWNER = "bias_owner"
B_BIAS_DUE = "bias_due"
B_BIAS_STATUS = "bias_status"
B_BIAS_CYCLES = "bias_cycles"
B_BIAS_DRIVER = "bias_driver"
B_MISSING_WHO = "missing_who"
B_MISSING_HOW = "missing_how"
B_MISSING_WHAT = "missing_what"
B_MISSING_STATUS = "missing_status"
B_TEAM_ROLES = "team_roles"
B_TEAM_COMPOSITION = "team_composition"
B_TEAM_MISSING = "team_missing_voices"
B_TEAM_WHO_ELSE = "team_who_else"
B_TEAM_INVITE_STAFF = "team_invite_staff"
B_TEAM_INVITE_PARTNERS = "team_invite_partners"

# --- onboarding (App Home for someone with no project, the welcome DM) ---
A_HOME_HOW_TO_START = "home_how_to_start"
VIEW_HOW_TO_START = "how_to_start"  # a modal with only a Close button: Slack sends no view_submission for it
A_HOME_TOUR = "home_tour"  # "See a two-minute tour"; no value
VIEW_TOUR = "tour"  # the tour: a modal with only a Close button

# --- shortcuts (manifest.yml features.shortcuts declares exactly these callback_ids) ---
SC_ADD_TO_PDSA = "add_to_pdsa"  # message shortcut: save a message as an observation in a cycle's Do log
SC_LOG_MEASURE = "log_measure"  # global shortcut: the /measure log form for one of the person's projects
SHORTCUTS = (SC_ADD_TO_PDSA, SC_LOG_MEASURE)
VIEW_LOG_PICK_PROJECT = (
    "log_pick_project"  # no submit button: choosing a project replaces it with the log form
)
A_LOG_PICK_PROJECT = "log_pick_project"
CB_PDSA_OBSERVATION = "pdsa_observation"
B_PDSA_OBS_CYCLE = "pdsa_observation_cycle"
B_PDSA_OBS_TEXT = "pdsa_observation_text"

# --- the driver diagram (/mfi drivers) ---
A_DRIVERS_OPEN = "drivers_open"  # value: project id (the project card, the Home tab)
VIEW_DRIVERS = (
    "drivers_editor"  # the diagram's outline with its buttons; no submit button: no view_submission
)
A_DRIVERS_ADD_PRIMARY = "drivers_add_primary"  # the buttons inside the editor (checked against its grant)
A_DRIVERS_ADD_SECONDARY = "drivers_add_secondary"
A_DRIVERS_ADD_IDEA = "drivers_add_idea"
A_DRIVERS_POST = "drivers_post"  # post the picture in the project's channel
A_DRIVERS_ITEM = "drivers_item"  # overflow on one item: "<edit|up|down|retire>:<driver|idea>:<id>"
A_DRIVERS_PAGE_PREV = "drivers_page_prev"  # value: the page to show
A_DRIVERS_PAGE_NEXT = "drivers_page_next"
CB_DRIVER = "driver_form"  # add or edit a driver (private_metadata: project_id, driver_id, level)
CB_CHANGE_IDEA = "change_idea_form"  # add or edit a change idea (project_id, idea_id)
CB_DRIVERS_RETIRE = "drivers_retire"  # retire a driver or change idea (project_id, driver_id or idea_id)
B_DRIVER_TEXT = "driver_text"
B_DRIVER_PARENT = "driver_parent"
B_DRIVER_WHERE = "driver_where"
B_DRIVER_INFLUENCE = "driver_influence"
B_DRIVER_WHO = "driver_who_can"
B_IDEA_TEXT = "change_idea_text"
B_IDEA_DRIVER = "change_idea_driver"
B_RETIRE_WHY = "drivers_retire_why"
B_PDSA_IDEA = "pdsa_change_idea_id"  # /pdsa new: the change idea from the diagram
B_PDSA_IDEA_DRIVER = "pdsa_change_idea_driver"  # /pdsa new: or add the typed idea under this driver

# Every callback_id and action_id, for the manifest/handler consistency test.
CALLBACK_IDS = tuple(value for name, value in dict(globals()).items() if name.startswith("CB_"))
ACTION_IDS = tuple(
    value for name, value in dict(globals()).items() if name.startswith("A_") and name != "A_INPUT"
)
