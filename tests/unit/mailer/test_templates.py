"""Campaign templates: sandboxed, autoescaped, strict about missing variables, checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import InvalidInput
from services.common.personalisation_config import TEMPLATE_NAMES
from services.common.settings import PipelineConfigSettings, load
from services.mailer.campaigns import CampaignCatalog
from services.mailer.templates import TemplateSet, template_context
from tests.unit.mailer.helpers import request, write_template


def test_shipped_templates_compile_and_name_the_cart_products() -> None:
    settings = load(PipelineConfigSettings)
    catalog = CampaignCatalog(settings.config, settings.templates_dir)
    snapshot = catalog.current
    assert snapshot.templates.broken == {}
    assert set(snapshot.campaigns) == {
        "cart_abandonment",
        "browse_abandonment",
        "search_abandonment",
    }
    rendered = snapshot.templates.render("cart_abandonment", template_context(request()))
    assert "Red Shoes" in rendered.subject
    assert "Blue Hat" in rendered.html and "Blue Hat" in rendered.text
    search = snapshot.templates.render(
        "search_abandonment",
        template_context(request(campaign="search_abandonment", variables={"searchTerms": "tent"})),
    )
    assert "tent" in search.subject


def test_html_is_autoescaped_and_text_is_not(tmp_path: Path) -> None:
    write_template(
        tmp_path, "t", "Hi {{ first_name }}", "<p>{{ first_name }}</p>", "{{ first_name }}"
    )
    templates = TemplateSet(tmp_path, {"c": "t"})
    rendered = templates.render("c", template_context(request(first_name="<script>x</script>")))
    assert rendered.html == "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    assert rendered.text == "<script>x</script>"


def test_a_missing_variable_is_an_error_never_a_blank(tmp_path: Path) -> None:
    write_template(tmp_path, "t", "Hi", "<p>{{ coupon_code }}</p>", "x")
    templates = TemplateSet(tmp_path, {"promo": "t"})
    assert templates.broken == {}  # compiles; the variable is only known missing at render
    with pytest.raises(InvalidInput) as caught:
        templates.render("promo", template_context(request()))
    assert caught.value.reason == "template_error"
    assert "coupon_code" in str(caught.value) and "promo" in str(caught.value)


def test_a_broken_template_is_named_at_load_and_refused_at_render(tmp_path: Path) -> None:
    write_template(tmp_path, "good", "Hi", "<p>ok</p>", "ok")
    write_template(tmp_path, "bad", "Hi", "<p>{% for x in products %}</p>", "ok")
    templates = TemplateSet(tmp_path, {"fine": "good", "oops": "bad", "absent": "nowhere"})
    assert set(templates.broken) == {"oops", "absent"}
    assert "bad/body.html" in templates.broken["oops"]
    assert "nowhere" in templates.broken["absent"]
    assert templates.render("fine", template_context(request())).html == "<p>ok</p>"
    with pytest.raises(InvalidInput) as caught:
        templates.render("oops", template_context(request()))
    assert caught.value.reason == "template_broken"
    assert "oops" in str(caught.value)


def test_the_sandbox_blocks_python_internals(tmp_path: Path) -> None:
    write_template(
        tmp_path, "t", "Hi", "{{ first_name.__class__.__mro__[1].__subclasses__() }}", "x"
    )
    templates = TemplateSet(tmp_path, {"c": "t"})
    with pytest.raises(InvalidInput, match=r"SecurityError|UndefinedError"):
        templates.render("c", template_context(request()))


def test_subject_is_one_line_and_never_empty(tmp_path: Path) -> None:
    write_template(tmp_path, "t", "Hello\n  {{ first_name }}\r\nBcc: x@evil.test", "h", "t")
    write_template(tmp_path, "empty", "{{ '' }}  \n", "h", "t")
    templates = TemplateSet(tmp_path, {"c": "t", "e": "empty"})
    assert templates.render("c", template_context(request())).subject == (
        "Hello Ann Bcc: x@evil.test"
    )
    with pytest.raises(InvalidInput, match="empty subject"):
        templates.render("e", template_context(request()))


def test_unknown_campaign_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        TemplateSet(tmp_path, {}).render("nope", {})
    assert caught.value.reason == "unknown_campaign"


def test_the_context_holds_the_template_names_and_the_variables() -> None:
    context = template_context(request(variables={"cartUrl": "https://shop.example/c"}))
    assert set(context) == TEMPLATE_NAMES | {"cartUrl"}


def test_a_declared_variable_the_request_lacks_renders_its_default(tmp_path: Path) -> None:
    write_template(tmp_path, "t", "Hi", "<a href='{{ cartUrl }}'>{{ coupon }}</a>", "x")
    defaults = {"c": {"cartUrl": "https://shop.example/cart", "coupon": ""}}
    templates = TemplateSet(tmp_path, {"c": "t"}, defaults)
    rendered = templates.render("c", template_context(request(variables={"coupon": "TEN"})))
    assert rendered.html == "<a href='https://shop.example/cart'>TEN</a>"


def test_free_names_list_what_each_part_reads_even_in_branches_never_taken(
    tmp_path: Path,
) -> None:
    write_template(
        tmp_path,
        "t",
        "{{ first_name }} {{ range(2)|list }}",
        "{% set x = 1 %}{% for p in products %}{{ p }}{% endfor %}{{ x }}",
        "{% if false %}{{ cartUrll }}{% endif %}",
    )
    templates = TemplateSet(tmp_path, {"c": "t", "gone": "missing"})
    assert templates.free_names("c") == {
        "subject.txt": frozenset({"first_name"}),
        "body.html": frozenset({"products"}),
        "body.txt": frozenset({"cartUrll"}),
    }
    assert templates.free_names("gone") == {}


def shipped() -> TemplateSet:
    settings = load(PipelineConfigSettings)
    return CampaignCatalog(settings.config, settings.templates_dir).current.templates


@pytest.mark.parametrize(
    ("campaign", "variables", "wanted"),
    [
        ("cart_abandonment", {"cartUrl": ""}, "a few things you liked"),
        ("cart_abandonment", {"cartUrl": "https://shop.example/cart"}, "Return to your cart"),
        ("browse_abandonment", {"pageUrl": ""}, "something that caught your eye"),
        ("search_abandonment", {"searchTerms": ""}, "our latest arrivals"),
        ("search_abandonment", {"searchTerms": "tent"}, "new arrivals matching your search"),
    ],
)
def test_shipped_templates_degrade_without_optional_data(
    campaign: str, variables: dict[str, str], wanted: str
) -> None:
    bare = request(campaign=campaign, first_name=None, products=(), variables=variables)
    rendered = shipped().render(campaign, template_context(bare))
    assert wanted in rendered.html and wanted in rendered.text
    assert rendered.subject.startswith("Hello, ")
    assert '""' not in rendered.subject and "None" not in rendered.subject + rendered.text
    if not variables.get("cartUrl", "x"):
        assert "href" not in rendered.html


def test_shipped_templates_isolate_right_to_left_names_in_html() -> None:
    rtl = request(first_name="דוד", variables={"cartUrl": "https://shop.example/cart"})
    rendered = shipped().render("cart_abandonment", template_context(rtl))
    assert "<bdi>דוד</bdi>" in rendered.html and rendered.subject.startswith("דוד, your")
