# Copyright: Isobar contributors
# Apache-2.0
"""Pure planning of a partition rebalance (no I/O): which replicas to move so that brokers hold a balanced share.

Used by the kafka_rebalance module, for check mode and the real run alike. Balanced means: every target broker holds
the same number of replicas within one, and is the preferred leader (first replica) of the same number of partitions
within one. The plan moves as few replicas as it can: an assignment that is already balanced yields no move at all
(what makes a second run change nothing), and leadership is balanced by reordering replicas, which moves no data.

Assignments are ``{(topic, partition): [broker ids, preferred leader first]}``.
"""

from __future__ import annotations

from collections import Counter


class BalanceError(Exception):
    """A request the plan refuses (the message says why and what to do); nothing has been changed."""


def _spread(counts, brokers):
    values = [counts.get(b, 0) for b in brokers]
    return (max(values) - min(values)) if values else 0


def replicas_per_broker(assignment, brokers=()):
    """{broker: replicas it holds}, with 0 for the given brokers that hold none."""
    counts = Counter({b: 0 for b in brokers})
    for replicas in assignment.values():
        counts.update(replicas)
    return dict(sorted(counts.items()))


def leaders_per_broker(assignment, brokers=()):
    """{broker: partitions whose preferred leader (first replica) it is}, with 0 for the given brokers."""
    counts = Counter({b: 0 for b in brokers})
    counts.update(replicas[0] for replicas in assignment.values() if replicas)
    return dict(sorted(counts.items()))


def absent(assignment, brokers, drain):
    """Drained ids that are neither registered nor hold a replica: already gone (a removal run again), or a typo."""
    return sorted(set(drain) - set(brokers) - {b for replicas in assignment.values() for b in replicas})


def validate(assignment, brokers, drain):
    """Refuse what cannot be balanced safely: returns the sorted target brokers."""
    brokers, drain = set(brokers), set(drain)
    targets = sorted(brokers - drain)
    if not targets:
        raise BalanceError("no broker would be left to hold the partitions (every registered broker is drained).")
    for (topic, partition), replicas in sorted(assignment.items()):
        stray = sorted(set(replicas) - brokers - drain)
        if stray:
            raise BalanceError(
                f"{topic}-{partition} has a replica on broker(s) {stray}, which are not registered: bring them back, "
                "or name them in drain to move their replicas away.")
        if len(set(replicas)) != len(replicas):
            raise BalanceError(f"{topic}-{partition} lists a broker twice: {replicas}.")
    factors = {}
    for (topic, _partition), replicas in assignment.items():
        factors[topic] = max(factors.get(topic, 0), len(replicas))
    too_wide = sorted((factor, topic) for topic, factor in factors.items() if factor > len(targets))
    if too_wide:
        factor, topic = too_wide[-1]
        raise BalanceError(
            f"topic {topic!r} has replication factor {factor}, more than the {len(targets)} broker(s) "
            f"{targets} that would remain: removing {sorted(drain)} would leave it under-replicated. Add a broker "
            "first, or lower the topic's replication factor deliberately.")
    return targets


def _topic_counts(assignment):
    """{(topic, broker): replicas of that topic on that broker}."""
    counts = Counter()
    for (topic, _partition), replicas in assignment.items():
        for broker in replicas:
            counts[topic, broker] += 1
    return counts


def _drain(new, targets, drain, load):
    for key in sorted(new):
        replicas = new[key]
        for index, broker in enumerate(replicas):
            if broker in drain:
                choice = min((b for b in targets if b not in replicas), key=lambda b: (load[b], b))
                replicas[index] = choice
                load[choice] += 1


def _balance_replicas(new, targets, load):
    per_topic = _topic_counts(new)
    while True:
        high = max(targets, key=lambda b: (load[b], -b))
        lows = sorted((b for b in targets if load[b] < load[high] - 1), key=lambda b: (load[b], b))
        if not lows:
            return
        move = None
        for low in lows:
            # Prefer a follower (no leadership change) of the topic where high holds the most more than low.
            candidates = [key for key in sorted(new) if high in new[key] and low not in new[key]]
            if candidates:
                key = max(candidates, key=lambda k: (per_topic[k[0], high] - per_topic[k[0], low],
                                                     new[k][0] != high, k[0], -k[1]))
                move = key, low
                break
        if move is None:
            return
        key, low = move
        replicas = new[key]
        replicas[replicas.index(high)] = low
        load[high] -= 1
        load[low] += 1
        per_topic[key[0], high] -= 1
        per_topic[key[0], low] += 1


def _leadership_path(new, targets, leaders, start):
    """Shortest chain start -> ... -> b handing one leadership per step, ending on a broker that leads at least two
    fewer partitions than start (a breadth-first search; each step swaps a partition's first replica with another
    of its replicas). Returns [(partition key, from broker, to broker), ...] or None."""
    edges = {}
    for key in sorted(new):
        replicas = new[key]
        for other in replicas[1:]:
            edges.setdefault(replicas[0], {}).setdefault(other, key)
    previous, frontier = {start: None}, [start]
    while frontier:
        following = []
        for broker in frontier:
            for other, key in sorted(edges.get(broker, {}).items()):
                if other in previous or other not in targets:
                    continue
                previous[other] = (broker, key)
                if leaders[other] <= leaders[start] - 2:
                    path, node = [], other
                    while previous[node] is not None:
                        source, via = previous[node]
                        path.append((via, source, node))
                        node = source
                    return list(reversed(path))
                following.append(other)
        frontier = following
    return None


def _trade_leadership(new, targets, leaders, high):
    """When no reordering helps (e.g. replication factor 1): high hands a partition it leads to a broker that leads
    two fewer and takes one of that broker's follower replicas back, so replica counts stay as they are."""
    for low in sorted((b for b in targets if leaders[b] <= leaders[high] - 2), key=lambda b: (leaders[b], b)):
        led = [key for key in sorted(new) if new[key][0] == high and low not in new[key]]
        followed = [key for key in sorted(new) if low in new[key][1:] and high not in new[key]]
        if led and followed:
            new[led[0]][0] = low
            replicas = new[followed[0]]
            replicas[replicas.index(low)] = high
            leaders[high] -= 1
            leaders[low] += 1
            return True
    return False


def _balance_leaders(new, targets):
    leaders = Counter({b: 0 for b in targets})
    leaders.update(replicas[0] for replicas in new.values())
    stuck = set()
    while True:
        highs = [b for b in sorted(targets, key=lambda b: (-leaders[b], b))
                 if b not in stuck and leaders[b] - min(leaders[t] for t in targets) > 1]
        if not highs:
            return
        high = highs[0]
        path = _leadership_path(new, targets, leaders, high)
        if path is None:
            if not _trade_leadership(new, targets, leaders, high):
                stuck.add(high)
            continue
        for key, source, target in path:
            replicas = new[key]
            position = replicas.index(target)
            replicas[0], replicas[position] = target, source
        leaders[high] -= 1
        leaders[path[-1][2]] += 1
        stuck.clear()


def plan(assignment, brokers, drain=()):
    """The balanced assignment and the partitions that change.

    Returns a dict: ``assignment`` (the whole new assignment), ``moves`` (``{key: (before, after)}`` for every
    partition whose replica list changes), ``data_moves`` (the subset whose replica set changes, i.e. data is
    copied), and the per-broker counts before and after.
    """
    drain = set(drain)
    targets = validate(assignment, brokers, drain)
    gone = absent(assignment, brokers, drain)
    new = {key: list(replicas) for key, replicas in assignment.items()}
    load = Counter({b: 0 for b in targets})
    for replicas in new.values():
        load.update(b for b in replicas if b in targets)
    _drain(new, targets, drain, load)
    _balance_replicas(new, targets, load)
    _balance_leaders(new, targets)
    moves = {key: (list(assignment[key]), new[key]) for key in sorted(new) if new[key] != list(assignment[key])}
    data_moves = {key: change for key, change in moves.items() if set(change[0]) != set(change[1])}
    shown = sorted(set(brokers) | (drain - set(gone)))
    return {
        "assignment": new,
        "moves": moves,
        "data_moves": data_moves,
        "targets": targets,
        "absent": gone,
        "replicas_before": replicas_per_broker(assignment, shown),
        "replicas_after": replicas_per_broker(new, shown),
        "leaders_before": leaders_per_broker(assignment, shown),
        "leaders_after": leaders_per_broker(new, shown),
    }


def is_balanced(assignment, targets):
    """Replicas and preferred leaders within one per target broker, and nothing outside the targets."""
    replicas = replicas_per_broker(assignment, targets)
    leaders = leaders_per_broker(assignment, targets)
    outside = set(replicas) - set(targets)
    return not outside and _spread(replicas, targets) <= 1 and _spread(leaders, targets) <= 1


def throttled_replicas(moves):
    """The topic configs kafka-reassign-partitions sets for a throttled move, per topic.

    leader side: every current replica of a moving partition (they serve the copy); follower side: the replicas
    being added. Values are Kafka's ``partition:broker`` lists.
    """
    leader, follower = {}, {}
    for (topic, partition), (before, after) in sorted(moves.items()):
        leader.setdefault(topic, []).extend(f"{partition}:{b}" for b in before)
        follower.setdefault(topic, []).extend(f"{partition}:{b}" for b in after if b not in before)
    return {topic: {"leader.replication.throttled.replicas": ",".join(leader[topic]),
                    "follower.replication.throttled.replicas": ",".join(follower.get(topic, []))}
            for topic in leader}
