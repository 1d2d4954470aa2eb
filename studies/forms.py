from django import forms

DEVICES = [
    ("", "Prefer not to say"),
    ("desktop", "Desktop computer"),
    ("laptop", "Laptop"),
    ("tablet", "Tablet"),
    ("phone", "Phone"),
    ("other", "Other"),
]
AGE_BANDS = [
    ("", "Prefer not to say"),
    ("18-24", "18–24"),
    ("25-34", "25–34"),
    ("35-44", "35–44"),
    ("45-54", "45–54"),
    ("55-64", "55–64"),
    ("65+", "65 or older"),
]


class QuestionnaireForm(forms.Form):
    """The optional end questionnaire; every answer may be left out."""

    device = forms.ChoiceField(
        choices=DEVICES,
        required=False,
        label="What did you use?",
        widget=forms.Select(attrs={"autofocus": True}),
    )
    screen = forms.RegexField(
        regex=r"^\d{2,5}x\d{2,5}$", required=False, widget=forms.HiddenInput, max_length=11
    )
    age_band = forms.ChoiceField(choices=AGE_BANDS, required=False, label="Your age")

    def answers(self) -> dict[str, str]:
        return {k: v for k, v in self.cleaned_data.items() if v}
