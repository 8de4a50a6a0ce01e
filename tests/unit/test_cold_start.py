"""Cold-start buckets and centroids (feed.cold_start's pure part): no database."""
import numpy as np
import pytest

from feed.cold_start import Profile, ProfileError, bucket_keys, parse_profile, top_engagers_centroid


def e(i, dim=4):
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


def test_a_profile_is_normalised():
    profile = parse_profile({"country": "gb", "app_version": "3.2.1", "interests": ["Home  Cooking", "football",
                                                                                     "home cooking"]})
    assert profile == Profile("GB", "3", ("football", "home cooking"))


@pytest.mark.parametrize("data, field", [
    ({}, "profile"), ("GB", "profile"), ({"country": "GBR"}, "profile.country"), ({"country": 44}, "profile.country"),
    ({"app_version": "v3"}, "profile.app_version"), ({"interests": "cooking"}, "profile.interests"),
    ({"interests": [""]}, "profile.interests"), ({"interests": ["x"] * 11}, "profile.interests"),
    ({"age": 30}, "profile.age"),
])
def test_a_bad_profile_names_its_field(data, field):
    with pytest.raises(ProfileError) as caught:
        parse_profile(data)
    assert caught.value.field == field


def test_bucket_keys_go_from_the_most_specific_to_one_attribute():
    assert bucket_keys(Profile("IT", "3", ("food",))) == [
        "country=IT|app=3|interests=food",
        "country=IT|app=3", "country=IT|interests=food", "app=3|interests=food",
        "country=IT", "app=3", "interests=food",
    ]
    assert bucket_keys(Profile(country="IT")) == ["country=IT"]
    assert bucket_keys(Profile()) == []


def test_the_centroid_pools_the_top_engagers_only():
    engagers = [(1, e(3)), (9, e(0)), (5, e(1)), (2, e(3))]
    centroid = top_engagers_centroid(engagers, top=2)
    assert centroid == pytest.approx((e(0) + e(1)) / np.sqrt(2))
    assert top_engagers_centroid([]) is None
