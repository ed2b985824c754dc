"""The pair judgment with the real model, where users look: a small site's follow-ups, an undated draft."""
from __future__ import annotations

import pytest

from tests.conftest import build_hash_index

pytestmark = [pytest.mark.model, pytest.mark.slow]

# A small local site: twenty stories of 30-45 words over three weeks, the first and its follow-up on one club.
SITE = [
    ("rovers-title", "2024-05-04", "Rovers win league title",
     "Rovers won the league title on Saturday with a 2-0 win over City at a sold-out Riverside Park. Goals from Lopes "
     "and Hart sealed the club's first championship in eighteen years, and fans filled the streets around the ground."),
    ("lopes-award", "2024-05-11", "Lopes named player of the season",
     "Rovers striker Daniel Lopes was named the league's player of the season on Friday after scoring 24 goals in the "
     "title-winning campaign. Lopes, 27, said the award belonged to the whole squad and the club's supporters."),
    ("bus-routes", "2024-05-06", "City council approves new bus routes",
     "The city council approved four new bus routes on Monday, linking the northern suburbs to the hospital and the "
     "train station. The routes start in September and will run every fifteen minutes at peak hours."),
    ("library", "2024-05-07", "Library reopens after renovation",
     "The central library reopened on Tuesday after an eighteen-month renovation that added a children's wing, a "
     "cafe and study rooms. Visitors queued before the doors opened, and the mayor cut the ribbon."),
    ("bakery", "2024-05-08", "Bakery celebrates a hundred years",
     "The family bakery on Market Street celebrated its hundredth year with free bread for every customer who "
     "brought a story about the shop. The fourth generation of the family now runs the ovens."),
    ("school-budget", "2024-05-09", "School board cuts music budget",
     "The school board voted to cut the music budget by a third on Thursday, despite protests from parents and "
     "students. Board members said rising heating costs left no other choice this year."),
    ("bridge", "2024-05-10", "Old bridge closed for repairs",
     "The old stone bridge over the river closed on Friday for three months of repairs after inspectors found "
     "cracks in two arches. Drivers are directed to the ring road, adding ten minutes to trips."),
    ("marathon", "2024-05-12", "Thousands run the spring marathon",
     "More than four thousand runners took part in the spring marathon on Sunday. A local teacher won the women's "
     "race in record time, and the event raised money for the children's hospital."),
    ("farmers-market", "2024-05-13", "Farmers market moves to the square",
     "The weekly farmers market moved to the town square on Monday after years at the car park. Stallholders said "
     "the new site brought more shoppers, though some complained about the lack of parking."),
    ("fire", "2024-05-14", "Fire destroys warehouse",
     "A fire destroyed a furniture warehouse on the industrial estate early on Tuesday. Nobody was hurt, but smoke "
     "closed nearby roads for hours and firefighters stayed on site until the evening."),
    ("election", "2024-05-15", "Mayor announces re-election bid",
     "The mayor announced on Wednesday that she will stand for a third term in the autumn election, promising "
     "more affordable housing and a new swimming pool for the eastern district."),
    ("museum", "2024-05-16", "Museum shows local painter",
     "The town museum opened an exhibition of a local painter's landscapes on Thursday, the first show of her work "
     "in forty years. The paintings were lent by families across the region."),
    ("zoo", "2024-05-17", "Zoo welcomes baby giraffe",
     "The zoo welcomed a baby giraffe on Friday, the first born there in a decade. Keepers said mother and calf "
     "were healthy, and visitors can see them from next week."),
    ("storm", "2024-05-18", "Storm brings down trees",
     "A storm on Saturday brought down trees across the town, blocking roads and cutting power to two thousand "
     "homes. Crews worked through the night and most homes had power back by morning."),
    ("hospital", "2024-05-19", "Hospital opens new wing",
     "The hospital opened a new emergency wing on Sunday, doubling the number of beds for urgent care. Staff said "
     "waiting times should fall by half once all the rooms are in use."),
    ("cinema", "2024-05-20", "Cinema returns to the high street",
     "A cinema opened on the high street on Monday for the first time in twenty years, with two screens and a cafe. "
     "The owners said they would show classic films every Sunday afternoon."),
    ("cycle-lanes", "2024-05-21", "Council plans cycle lanes",
     "The council unveiled plans on Tuesday for cycle lanes on three main roads, separated from traffic by kerbs. "
     "Residents can comment on the plans until the end of June."),
    ("water", "2024-05-22", "Water bills to rise",
     "Water bills will rise by eight percent from July, the water company said on Wednesday, blaming the cost of "
     "repairing old pipes. Households on low incomes can apply for a discount."),
    ("festival", "2024-05-23", "Music festival line-up announced",
     "Organisers announced the line-up of the summer music festival on Thursday, with forty bands on three stages "
     "in the park. Tickets go on sale next week and children under twelve go free."),
    ("parade", "2024-05-24", "Rovers celebrate with open-top bus parade",
     "Rovers paraded the league trophy through the town on an open-top bus on Friday, as thousands of fans lined "
     "the streets. The players thanked supporters from the town hall balcony."),
]


@pytest.fixture(scope="module")
def small_site(tmp_path_factory, real_embedder, real_config):
    from recommender.facade import Recommender

    records = [{"id": i, "published": d, "title": t, "body": b, "source": "local"} for i, d, t, b in SITE]
    index = build_hash_index(tmp_path_factory.mktemp("small-site") / "idx", records, real_config, real_embedder)
    rec = Recommender(real_config.replace(index=str(index)), real_embedder)
    rec.load()
    return rec


def test_a_small_sites_follow_up_is_listed_and_no_item_scores_above_its_evidence(small_site):
    answer = small_site.related(small_site.params(k=5), id="rovers-title")
    items = {i["id"]: i for i in answer["items"]}
    assert "lopes-award" in items or "parade" in items, answer["items"]
    # a text that says little, whose neighbours would lift it: the same holds
    short = small_site.related(small_site.params(k=5), article={"title": "Town news", "body": "Things happened."})
    for item in answer["items"] + short["items"]:
        # the list's evidence: a score is never above what the pair judgment and the cosine support
        assert item["score"] <= max(item["p_related"], item["similarity"]) + 1e-6, item
    # and /api/compare's judgment of the same pair is the list's
    rovers, lopes = SITE[0], SITE[1]
    compared = small_site.compare({"title": rovers[2], "body": rovers[3], "published": rovers[1]},
                                  {"title": lopes[2], "body": lopes[3], "published": lopes[1]})
    if "lopes-award" in items:
        assert compared["scores"]["p_retelling"] == pytest.approx(items["lopes-award"]["p_retelling"], abs=0.05)
    assert compared["level"] != "same-story"  # a follow-up a week later is not the same story told again


DRAFT = {"title": "President of China lunches with Brazilian President",
         "body": "Hu Jintao, the President of the People's Republic of China, had lunch today with the President "
                 "of Brazil, Luiz Inacio Lula da Silva, at the Granja do Torto, the President's country residence. "
                 "Lunch was a traditional Brazilian barbecue with different kinds of meat."}
VISIT = {"id": "hu-visit", "title": "Chinese president Hu Jintao visits United States", "published": "2011-01-18",
         "body": "Chinese President Hu Jintao arrived in Washington for a state visit, meeting President Barack "
                 "Obama at the White House to discuss trade, currency and human rights."}
MEETING = {"id": "lula-medvedev", "title": "President of Brazil meets President of Russia", "published": "2010-05-14",
           "body": "Brazilian President Luiz Inacio Lula da Silva met Russian President Dmitry Medvedev in Moscow, "
                   "where the two leaders signed agreements on energy and space cooperation."}


@pytest.mark.xfail(strict=True, reason="the shipped pair model reads an undated pair on the same people at cosine "
                   "0.51-0.62 as a retelling (p 0.61-0.65): without dates only the text tells events apart, and the labelled "
                   "kinds' undated pairs (SemEval) call such pairs the same story (docs/pairs.md)")
def test_an_undated_draft_is_not_a_retelling_of_events_years_apart_in_similar_words(small_site):
    for other in (VISIT, MEETING):
        judged = small_site.compare(DRAFT, other)
        assert judged["level"] != "same-story" and judged["scores"]["p_retelling"] < 0.5, judged


def test_a_text_of_one_word_shared_is_not_the_draft_told_again(small_site):
    """"Lula met Hu." holds one content word, the draft's too: all of its words shared, but one word. Read as a
    plain share it was the draft told again (p_retelling 0.58) and related at 0.997; a share rests on the
    words it counts (pairs.LEX_UNSEEN)."""
    judged = small_site.compare(DRAFT, {"title": "Lula met Hu.", "body": ""})
    assert judged["level"] != "same-story" and judged["scores"]["p_retelling"] < 0.5, judged
    assert judged["scores"]["p_related"] < 0.97, judged


def test_the_draft_check_dates_a_draft_the_day_it_goes_out_and_judges_the_time_apart(tmp_path, real_embedder,
                                                                                     real_config):
    """/admin/check dates a draft today unless the editor changes it: events years apart in similar words are
    then not the story told again; cleared, the date is unknown and the text alone is judged."""
    import re

    from tests.conftest import make_app

    records = [{"id": i, "published": d, "title": t, "body": b, "source": "local"} for i, d, t, b in SITE] + [VISIT, MEETING]
    index = build_hash_index(tmp_path / "idx", records, real_config, real_embedder)
    client = make_app(index, real_embedder, backend=real_config.backend, token="t").test_client()
    auth = {"Authorization": "Bearer t"}
    page = client.get("/admin/check", headers=auth).get_data(as_text=True)
    today = re.search(r'name="published" value="([0-9-]+)"', page).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def checked(published: str) -> dict:
        answer = client.post("/admin/check", headers={**auth, "Accept": "application/json"},
                             data={"csrf": csrf, "headline": DRAFT["title"], "text": DRAFT["body"], "published": published})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    dated = checked(today)
    assert dated["published"] == today and dated["verdict"] != "same-story", dated
    assert not [m for m in dated["matches"] if m["level"] == "same-story"], dated["matches"]
    assert checked("")["published"] is None  # cleared: undated, judged on the text alone
