"""Stories: the items, from any feeds, that report one event.

``cluster`` decides which story an item belongs to and ``surge`` when a rule's stories rise
above its baseline; both are pure (plain data in, a decision out).
"""
