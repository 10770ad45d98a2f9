"""Who may call the API and read Firestore directly: access.tf and the variables it reads, evaluated by Terraform
itself (tfeval.AccessDecisions), then read by the runtime's own Settings class. The defaults admit only IAM
principals with a Google ID token; each opt-in sets the setting it names and opens the API's invoker to allUsers
exactly when Cloud Run's IAM could not admit the callers it means; development- and test-only settings, and the
removed opt-out of token checks, stop the plan with a message saying what to do instead."""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

import pytest

from oncetask.settings import Settings

from .terraform import MODULE_DIR, REPO, Module, load_module, ref, squash, text
from .tfeval import AccessDecisions, PlanFailed, access_decisions  # noqa: F401 - the fixture

ACCESS_SETTINGS = {"ONCETASK_ALLOW_ANONYMOUS_SUBMISSIONS", "ONCETASK_FIREBASE_PROJECT_ID", "ONCETASK_FIREBASE_API_KEY",
                   "ONCETASK_FIREBASE_AUTH_DOMAIN", "ONCETASK_OPERATORS"}
API_KEY = "AIzaSyD-example-web-api-key-0123456789"  # the shape of a Firebase web API key (39 characters)


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


@pytest.fixture(scope="module")
def defaults(access_decisions: AccessDecisions) -> dict[str, Any]:
    return access_decisions.evaluate()


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The runtime's Settings as a function with this environment would read them."""
    for name in [n for n in os.environ if n.startswith("ONCETASK_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# Defaults ---------------------------------------------------------------------------------------------------------

def test_by_default_the_api_requires_a_token_and_only_iam_principals_reach_it(
        defaults: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    assert defaults["api_public_invoker"] is False
    assert defaults["env"] == {"ONCETASK_ALLOW_ANONYMOUS_SUBMISSIONS": "false", "ONCETASK_FIREBASE_PROJECT_ID": "",
                               "ONCETASK_FIREBASE_API_KEY": "", "ONCETASK_FIREBASE_AUTH_DOMAIN": "",
                               "ONCETASK_OPERATORS": ""}
    settings = settings_from(defaults["env"], monkeypatch)
    assert settings.api_require_auth is True
    assert settings.allow_anonymous_submissions is False
    assert settings.firebase_project_id == "" and settings.operators == frozenset()


def test_the_module_never_sets_whether_the_api_requires_a_token(module: Module) -> None:
    """Its default, true, is the only value a deployment may have; environment_variables refuses the name."""
    for env in ("module_env", "api_access_env"):
        assert "ONCETASK_API_REQUIRE_AUTH" not in module.locals[env]
    for path in set(MODULE_DIR.glob("*.tf")) - {MODULE_DIR / "variables.tf"}:  # nor elsewhere (a map or secret key)
        source = re.sub(r"#[^\n]*", "", path.read_text())
        setting = r'ONCETASK_API_REQUIRE_AUTH"?\s*=|key\s*=\s*"ONCETASK_API_REQUIRE_AUTH"'
        assert not re.search(setting, source), path.name
    assert Settings.model_fields["api_require_auth"].default is True


def test_every_function_gets_the_access_settings_and_the_modules_own_values_win(module: Module) -> None:
    assert set(module.locals["api_access_env"]) == ACCESS_SETTINGS
    assert squash(ref(module.locals["common_env"])) == \
        "merge(var.environment_variables,local.api_access_env,local.module_env)"


# Each opt-in --------------------------------------------------------------------------------------------------------

def test_anonymous_submissions_set_the_setting_and_open_the_invoker(
        access_decisions: AccessDecisions, monkeypatch: pytest.MonkeyPatch) -> None:
    access = access_decisions.evaluate(allow_anonymous_submissions=True)
    assert access["env"]["ONCETASK_ALLOW_ANONYMOUS_SUBMISSIONS"] == "true"
    assert access["api_public_invoker"] is True  # a caller without a token passes Cloud Run only as allUsers
    settings = settings_from(access["env"], monkeypatch)  # the runtime accepts it (it refuses it without auth)
    assert settings.allow_anonymous_submissions is True and settings.api_require_auth is True


def test_firebase_sign_in_of_this_project_sets_its_id_and_key_and_opens_the_invoker(
        access_decisions: AccessDecisions, monkeypatch: pytest.MonkeyPatch) -> None:
    access = access_decisions.evaluate(firebase_auth={"api_key": API_KEY})
    assert access["env"]["ONCETASK_FIREBASE_PROJECT_ID"] == "shop-prod"  # the module's project_id
    assert access["env"]["ONCETASK_FIREBASE_API_KEY"] == API_KEY
    assert access["env"]["ONCETASK_FIREBASE_AUTH_DOMAIN"] == ""
    assert access["env"]["ONCETASK_ALLOW_ANONYMOUS_SUBMISSIONS"] == "false"
    assert access["api_public_invoker"] is True  # Cloud Run's IAM accepts no Firebase token
    settings = settings_from(access["env"], monkeypatch)
    assert settings.firebase_issuer == "https://securetoken.google.com/shop-prod"
    assert settings.effective_firebase_auth_domain == "shop-prod.firebaseapp.com"


def test_firebase_sign_in_of_another_project_with_its_own_auth_domain(
        access_decisions: AccessDecisions, monkeypatch: pytest.MonkeyPatch) -> None:
    access = access_decisions.evaluate(firebase_auth={"project_id": "shop-identity",
                                                      "auth_domain": "login.shop.example"})
    assert access["env"]["ONCETASK_FIREBASE_PROJECT_ID"] == "shop-identity"
    assert access["env"]["ONCETASK_FIREBASE_AUTH_DOMAIN"] == "login.shop.example"
    assert access["env"]["ONCETASK_FIREBASE_API_KEY"] == ""  # tokens are accepted; the status page cannot sign in
    settings = settings_from(access["env"], monkeypatch)
    assert settings.firebase_project_id == "shop-identity"
    assert settings.effective_firebase_auth_domain == "login.shop.example"


def test_operators_reach_the_runtime_as_the_list_given(
        access_decisions: AccessDecisions, monkeypatch: pytest.MonkeyPatch) -> None:
    access = access_decisions.evaluate(operators=["ops@example.com", "112233445566778899"])
    assert access["env"]["ONCETASK_OPERATORS"] == "ops@example.com,112233445566778899"
    assert access["api_public_invoker"] is False  # operators still come in through IAM (or Firebase)
    assert settings_from(access["env"], monkeypatch).operators == frozenset({"ops@example.com", "112233445566778899"})


@pytest.mark.parametrize(("public", "anonymous", "firebase"), list(itertools.product([False, True], repeat=3)))
def test_allusers_invokes_the_api_exactly_when_an_opt_in_needs_it(
        access_decisions: AccessDecisions, public: bool, anonymous: bool, firebase: bool) -> None:
    access = access_decisions.evaluate(allow_public_api_invoker=public, allow_anonymous_submissions=anonymous,
                                       firebase_auth={} if firebase else None)
    assert access["api_public_invoker"] is (public or anonymous or firebase)
    # The public invoker on its own changes no setting: the API still refuses a job call without a token.
    assert access["env"]["ONCETASK_ALLOW_ANONYMOUS_SUBMISSIONS"] == str(anonymous).lower()


def test_the_apis_public_invoker_is_granted_by_that_decision_alone(module: Module) -> None:
    grant = module.resource("google_cloud_run_service_iam_member", "api_public")
    assert squash(ref(grant["count"])) == "local.api_public_invoker?1:0"
    assert text(grant["member"]) == "allUsers"
    assert text(grant["role"]) == "roles/run.invoker"
    assert ref(grant["service"]) == "google_cloudfunctions2_function.api.name"


# Refusals -----------------------------------------------------------------------------------------------------------

def refusal(access_decisions: AccessDecisions, **variables: Any) -> str:
    with pytest.raises(PlanFailed) as failure:
        access_decisions.evaluate(**variables)
    return str(failure.value)


def test_the_removed_opt_out_of_token_checks_stops_the_plan_and_says_what_to_do(
        access_decisions: AccessDecisions) -> None:
    message = refusal(access_decisions, allow_unauthenticated_api_calls=True)
    assert "allow_unauthenticated_api_calls is gone" in message
    assert "allow_anonymous_submissions = true" in message
    # A stack that spelled out the old default keeps planning, with the same (secure) result.
    assert access_decisions.evaluate(allow_unauthenticated_api_calls=False)["api_public_invoker"] is False


def test_token_checks_cannot_be_turned_off_through_environment_variables(access_decisions: AccessDecisions) -> None:
    message = refusal(access_decisions, environment_variables={"ONCETASK_API_REQUIRE_AUTH": "false"})
    assert "ONCETASK_API_REQUIRE_AUTH is not a deployment's setting" in message
    assert "allow_anonymous_submissions = true" in message


@pytest.mark.parametrize("name", ["ONCETASK_FIREBASE_CERTS_URL", "ONCETASK_STATUS_SIGN_IN_URL",
                                  "ONCETASK_OIDC_CERTS_URL"])
def test_test_only_issuer_settings_are_refused(access_decisions: AccessDecisions, name: str) -> None:
    message = refusal(access_decisions, environment_variables={name: "http://127.0.0.1:9/certs"})
    assert "are for tests only" in message and name in message


@pytest.mark.parametrize("name", ["FIRESTORE_EMULATOR_HOST", "CLOUD_TASKS_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
                                  "ONCETASK_ALLOW_LOCAL_CALLBACKS"])
def test_development_only_settings_are_refused(access_decisions: AccessDecisions, name: str) -> None:
    message = refusal(access_decisions, environment_variables={name: "127.0.0.1:8080"})
    assert "are for local development only" in message and name in message


def test_the_callback_secret_is_still_refused_as_a_plain_variable(access_decisions: AccessDecisions) -> None:
    assert "name its Secret Manager secret in callback_secret" in refusal(
        access_decisions, environment_variables={"ONCETASK_CALLBACK_SECRET": "s3cret"})


def test_other_environment_variables_pass(access_decisions: AccessDecisions) -> None:
    access_decisions.evaluate(environment_variables={"ONCETASK_OWNER_QUOTA": "100"})


def test_the_refused_names_are_settings_the_runtime_reads() -> None:
    """A refusal of a name nothing reads would guard nothing: every refused name is a Settings field's."""
    from .test_functions import env_names_of_settings  # noqa: PLC0415

    refused = set(re.findall(r'"((?:ONCETASK_|[A-Z_]+_EMULATOR_HOST)[A-Z_]*)"',
                             "".join(v["condition"] for v in load_module().variables["environment_variables"]
                                     ["validation"])))
    assert refused == {"ONCETASK_CALLBACK_SECRET", "ONCETASK_API_REQUIRE_AUTH", "ONCETASK_OIDC_CERTS_URL",
                       "ONCETASK_FIREBASE_CERTS_URL", "ONCETASK_STATUS_SIGN_IN_URL", "FIRESTORE_EMULATOR_HOST",
                       "CLOUD_TASKS_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "ONCETASK_ALLOW_LOCAL_CALLBACKS"}
    assert refused <= env_names_of_settings()


@pytest.mark.parametrize(("operators", "expected"), [
    (["user:ops@example.com"], "not IAM members"),
    (["serviceAccount:backend@shop-prod.iam.gserviceaccount.com"], "not IAM members"),
    (["allUsers"], "not IAM members"),
    (["ops@example.com,dev@example.com"], "without commas or spaces"),
    (["ops@example.com "], "without commas or spaces"),
    ([""], "without commas or spaces"),
])
def test_operators_are_refused_in_a_shape_the_api_would_never_match(
        access_decisions: AccessDecisions, operators: list[str], expected: str) -> None:
    assert expected in refusal(access_decisions, operators=operators)


@pytest.mark.parametrize(("firebase_auth", "expected"), [
    ({"project_id": "123456789012"}, "firebase_auth.project_id is the Firebase project's ID"),
    ({"project_id": "Shop Prod"}, "firebase_auth.project_id is the Firebase project's ID"),
    ({"api_key": "const firebaseConfig = {apiKey: 'AIza'}"}, "firebase_auth.api_key is the web API key"),
    ({"auth_domain": "https://shop-prod.firebaseapp.com"}, "firebase_auth.auth_domain is a host name"),
    ({"auth_domain": "shop-prod.firebaseapp.com/"}, "firebase_auth.auth_domain is a host name"),
])
def test_a_firebase_setting_in_the_wrong_shape_is_refused(
        access_decisions: AccessDecisions, firebase_auth: dict[str, str], expected: str) -> None:
    assert expected in refusal(access_decisions, firebase_auth=firebase_auth)


@pytest.mark.parametrize("member", ["allUsers", "allAuthenticatedUsers"])
def test_a_public_invoker_cannot_be_slipped_in_as_an_invoker_member(
        access_decisions: AccessDecisions, member: str) -> None:
    message = refusal(access_decisions, api_invoker_members=[member])
    assert "a public API is an explicit opt-in: allow_anonymous_submissions, firebase_auth or" in message


# Firestore rules ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("database", "release"), [("(default)", "cloud.firestore"),
                                                    ("oncetask", "cloud.firestore/oncetask")])
def test_the_rules_are_released_for_the_database_the_functions_use(
        access_decisions: AccessDecisions, database: str, release: str) -> None:
    assert access_decisions.evaluate(firestore_database=database)["firestore_rules_release"] == release


def test_by_default_the_rules_are_the_repositorys_firestore_rules(module: Module) -> None:
    """null means firestore.rules at the root of the repository the module comes from (a git or local source holds
    the whole repository)."""
    assert module.variables["firestore_rules_file"]["default"] is None
    default = squash(ref(module.locals["firestore_rules_file"]))
    assert default == ('var.firestore_rules_file!=null?var.firestore_rules_file:'
                       '"${path.module}/../../../firestore.rules"')
    assert (MODULE_DIR / "../../../firestore.rules").resolve() == REPO / "firestore.rules"


def test_a_named_rules_file_is_used_as_it_is(access_decisions: AccessDecisions) -> None:
    rules = str(REPO / "firestore.rules")
    assert access_decisions.evaluate(firestore_rules_file=rules)["firestore_rules_file"] == rules


def test_a_rules_file_that_is_not_firestore_rules_is_refused(access_decisions: AccessDecisions) -> None:
    message = refusal(access_decisions, firestore_rules_file=str(REPO / "pyproject.toml"))
    assert "firestore_rules_file must name a readable Firestore rules file" in message
    message = refusal(access_decisions, firestore_rules_file=str(REPO / "no-such.rules"))
    assert "firestore_rules_file must name a readable Firestore rules file" in message


def test_access_decisions_read_only_variables(module: Module) -> None:
    """What makes them evaluable without a provider (the AccessDecisions root would fail otherwise, too)."""
    source = re.sub(r"#[^\n]*", "", (MODULE_DIR / "access.tf").read_text())
    references = set(re.findall(r"\b(var|local|path|module|data|google_\w+|time_\w+)\.", source))
    assert references <= {"var", "local", "path"}, references
