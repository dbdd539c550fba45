def example_link(word: str) -> str:
    return f"http://testserver/{word}-secret"
