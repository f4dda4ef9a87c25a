import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from tenants.models import Membership, Tenant
from tenants.selectors import LOGIN_FAILURE_LIMIT
from tenants.services import tenant_signup
from tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "Blue-Tangerine-Rocket-42"


def signup(client, **overrides):
    data = {"company_name": "Initech GmbH", "email": "Peter@Initech.example",
            "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD, **overrides}
    return client.post(reverse("signup"), data)


def activation_link(message) -> str:
    line = next(line for line in message.body.splitlines() if "/signup/activate/" in line)
    return line.split("testserver", 1)[1]


def test_signup_creates_tenant_owner_membership_and_activates_by_email(client):
    response = signup(client)

    assert response.status_code == 302 and response.url == reverse("signup_sent")
    tenant = Tenant.objects.get()
    assert (tenant.name, tenant.slug) == ("Initech GmbH", "initech-gmbh")
    user = get_user_model().objects.get()
    assert user.username == user.email == "peter@initech.example"
    assert user.check_password(GOOD_PASSWORD) and not user.is_active
    membership = Membership.objects.get()
    assert (membership.user, membership.tenant, membership.role) == (user, tenant, Membership.Role.OWNER)
    assert client.get(reverse("dashboard")).status_code == 302  # not signed in yet

    [message] = mail.outbox
    assert message.to == ["peter@initech.example"] and "Activate" in message.subject
    link = activation_link(message)
    assert "Activate my account" in client.get(link).content.decode()  # a GET (mail scanners) changes nothing
    user.refresh_from_db()
    assert not user.is_active
    activated = client.post(link)
    assert activated.status_code == 302 and activated.url == reverse("wizard_start")  # straight into set-up
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200
    assert dashboard.wsgi_request.user == user
    assert "Initech GmbH" in dashboard.content.decode()
    assert client.post(link).status_code == 400  # one use


def test_signup_page_renders_with_password_rules(client):
    page = client.get(reverse("signup")).content.decode()
    assert 'name="company_name"' in page and 'name="password2"' in page
    assert "at least 10 characters" in page


def test_same_company_name_gets_a_unique_slug(db):
    first = tenant_signup(company_name="Initech", email="a@initech.example", password=GOOD_PASSWORD)
    second = tenant_signup(company_name="Initech", email="b@initech.example", password=GOOD_PASSWORD)
    assert first.tenant.slug == "initech"
    assert second.tenant.slug == "initech-2"


def test_signup_does_not_reveal_whether_an_email_is_registered(client):
    MembershipFactory(user__email="peter@initech.example", tenant__name="Existing Ltd")
    taken = signup(client, email="PETER@initech.example")
    taken_page = client.get(taken.url)
    new = signup(client, email="paul@initech.example", company_name="Other GmbH")
    new_page = client.get(new.url)

    assert (taken.status_code, taken.url) == (new.status_code, new.url) == (302, reverse("signup_sent"))
    assert taken_page.status_code == new_page.status_code == 200
    assert taken_page.content == new_page.content
    # The existing owner gets a notice instead; no second tenant appears for the taken address.
    assert Tenant.objects.filter(name="Initech GmbH").count() == 0
    notice, activation = mail.outbox
    assert notice.to == ["peter@initech.example"] and "already has one" in notice.body
    assert "/signup/activate/" not in notice.body and "/password-reset/" in notice.body
    assert activation.to == ["paul@initech.example"] and "/signup/activate/" in activation.body


def test_signing_up_again_before_activating_sends_a_fresh_link(client):
    signup(client)
    signup(client, company_name="Initech again")
    assert Tenant.objects.count() == 1
    assert all("/signup/activate/" in m.body for m in mail.outbox) and len(mail.outbox) == 2
    assert client.post(activation_link(mail.outbox[-1])).status_code == 302


def test_duplicate_email_is_refused_by_the_service_too(db):
    tenant_signup(company_name="One", email="dup@example.com", password=GOOD_PASSWORD)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        tenant_signup(company_name="Two", email="Dup@Example.com", password=GOOD_PASSWORD)
    assert "email" in exc.value.message_dict
    assert Tenant.objects.count() == 1


@pytest.mark.parametrize("password, message", [
    ("short1!", "too short"),
    ("password1234", "too common"),
    ("48213907561234", "entirely numeric"),
    ("peter.initech", "too similar"),
])
def test_weak_password_is_a_form_error(client, password, message):
    response = signup(client, password1=password, password2=password)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not get_user_model().objects.exists()


def test_mismatched_passwords_are_a_form_error(client):
    response = signup(client, password2=GOOD_PASSWORD + "x")
    assert "do not match" in response.content.decode()
    assert not Tenant.objects.exists()


def test_login_by_email_case_insensitive_and_logout_by_post(client):
    membership = MembershipFactory(user__email="ann@acme.example")
    response = client.post(reverse("login"), {"username": "Ann@ACME.example", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("dashboard")
    assert client.get(reverse("dashboard")).wsgi_request.user == membership.user

    assert client.get(reverse("logout")).status_code == 405  # never on GET
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302  # back to login


def test_wrong_password_is_a_plain_error(client):
    MembershipFactory(user__email="ann@acme.example")
    response = client.post(reverse("login"), {"username": "ann@acme.example", "password": "nope"})
    assert response.status_code == 200
    assert "Enter the email and password of your account" in response.content.decode()


def test_login_is_rate_limited_per_ip_and_email(client):
    MembershipFactory(user__email="ann@acme.example")
    for _ in range(LOGIN_FAILURE_LIMIT):
        response = client.post(reverse("login"), {"username": "ann@acme.example", "password": "wrong"})
        assert response.status_code == 200

    # Locked now, even with the right password.
    locked = client.post(reverse("login"), {"username": "ANN@acme.example", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert not locked.wsgi_request.user.is_authenticated

    # Another email from the same IP, and the same email from another IP, are not locked.
    MembershipFactory(user__email="bob@acme.example")
    other = client.post(reverse("login"), {"username": "bob@acme.example", "password": PASSWORD})
    assert other.status_code == 302
    client.post(reverse("logout"))
    elsewhere = client.post(reverse("login"), {"username": "ann@acme.example", "password": PASSWORD},
                            REMOTE_ADDR="10.9.8.7")
    assert elsewhere.status_code == 302


def test_successful_login_clears_earlier_failures(client):
    MembershipFactory(user__email="ann@acme.example")
    for _ in range(LOGIN_FAILURE_LIMIT - 1):
        client.post(reverse("login"), {"username": "ann@acme.example", "password": "wrong"})
    assert client.post(reverse("login"), {"username": "ann@acme.example", "password": PASSWORD}).status_code == 302
    client.post(reverse("logout"))
    client.post(reverse("login"), {"username": "ann@acme.example", "password": "wrong"})
    assert client.post(reverse("login"), {"username": "ann@acme.example", "password": PASSWORD}).status_code == 302


def test_password_reset_sends_a_working_link(client):
    MembershipFactory(user__email="ann@acme.example")
    response = client.post(reverse("password_reset"), {"email": "ann@acme.example"})
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password-reset/" in line)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(form_page.redirect_chain[-1][0],
                       {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert done.status_code == 302 and done.url == reverse("password_reset_complete")
    assert client.post(reverse("login"), {"username": "ann@acme.example", "password": GOOD_PASSWORD}).status_code == 302
