"""Exact enumeration of every configuration of d (the check on every closed form).

The log-weight of a configuration is A(d) = -H(d) = sum_k d_k h_k. Configurations are visited in
Gray-code order, so each step changes one site and A is updated by one term. Weights are taken
relative to A_max, the largest log-weight (known in closed form for each state space), so
exp(A - A_max) <= 1 never overflows. Marginals use the "time on" of each site: with the running
partition sum S_t, the weight collected while site k is on is S_{t_off} - S_{t_on}; both sums are
kept in compensated (Kahan) arithmetic so the O(1)-per-step update stays exact to rounding.
"""

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _kahan_add(total, comp, value):
    y = value - comp
    t = total + y
    comp = (t - total) - y
    return t, comp


@njit(cache=True)
def _block_log_weights(delta, first, count):
    """A_block[m] = sum_k bit_k(m) delta[first + k], for every m < 2^count, each a short exact sum."""
    table = np.zeros(1 << count)
    for m in range(1, 1 << count):
        k = 0
        while ((m >> k) & 1) == 0:
            k += 1
        table[m] = table[m & (m - 1)] + delta[first + k]
    return table


@njit(cache=True)
def _enumerate_two_state(h, low, high):
    """Visit all 2^K configurations of d_k in {low, high}; return (log Z, P(d_k = high)).

    Step t visits the Gray code g = t ^ (t >> 1), which differs from the previous one in one site.
    The log-weight is read as A(g) = A_0 + A_lo[g & mask] + A_hi[g >> L] from two tables of short
    exact sums, so no rounding accumulates over the 2^K steps.
    """
    k_sites = h.shape[0]
    delta = np.empty(k_sites)
    a0 = 0.0
    a_max = 0.0
    for k in range(k_sites):
        delta[k] = (high - low) * h[k]
        a0 += low * h[k]
        a_max += max(low * h[k], high * h[k])
    n_low = min(k_sites, 13)
    a_lo = _block_log_weights(delta, 0, n_low)
    a_hi = _block_log_weights(delta, n_low, k_sites - n_low)
    mask = (1 << n_low) - 1
    shift = a0 - a_max
    on = np.zeros(k_sites, dtype=np.bool_)
    t_on = np.zeros(k_sites)  # running sum when the site was switched on
    t_on_c = np.zeros(k_sites)
    acc = np.zeros(k_sites)
    acc_c = np.zeros(k_sites)
    s, s_c = 0.0, 0.0
    n_states = 1 << k_sites
    for t in range(n_states):
        if t > 0:
            # the site that changes between gray(t-1) and gray(t) is the lowest set bit of t
            k = 0
            while ((t >> k) & 1) == 0:
                k += 1
            if on[k]:
                on[k] = False
                d_acc = (s - t_on[k]) - (s_c - t_on_c[k])
                acc[k], acc_c[k] = _kahan_add(acc[k], acc_c[k], d_acc)
            else:
                on[k] = True
                t_on[k] = s
                t_on_c[k] = s_c
        g = t ^ (t >> 1)
        s, s_c = _kahan_add(s, s_c, math.exp(shift + a_lo[g & mask] + a_hi[g >> n_low]))
    for k in range(k_sites):
        if on[k]:
            d_acc = (s - t_on[k]) - (s_c - t_on_c[k])
            acc[k], acc_c[k] = _kahan_add(acc[k], acc_c[k], d_acc)
    marg = np.empty(k_sites)
    for k in range(k_sites):
        marg[k] = (acc[k] - acc_c[k]) / (s - s_c)
    return a_max + math.log(s - s_c), marg


@njit(cache=True, parallel=True)
def enumerate_two_state(h, low, high):
    """Per sample of h (N, K): exact log Z and P(d_k = high) over all 2^K configurations."""
    n_batch, k_sites = h.shape
    log_z = np.empty(n_batch)
    prob = np.empty((n_batch, k_sites))
    for n in prange(n_batch):
        lz, m = _enumerate_two_state(h[n], low, high)
        log_z[n] = lz
        prob[n] = m
    return log_z, prob


@njit(cache=True)
def _enumerate_onehot(h):
    """h (C, S): every assignment of one on-site per channel (S^C states), visited in reflected
    mixed-radix Gray order (one channel moves one site per step). Returns (log Z, P(d_cs = 1))."""
    n_ch, n_sites = h.shape
    a_max = 0.0
    for c in range(n_ch):
        best = h[c, 0]
        for s_ in range(1, n_sites):
            best = max(best, h[c, s_])
        a_max += best
    digit = np.zeros(n_ch, dtype=np.int64)
    direction = np.ones(n_ch, dtype=np.int64)
    # A = h[0, digit_0] + rest, rest = sum_{c >= 1} h[c, digit_c] summed afresh whenever it changes
    # (once every S steps), so no rounding accumulates over the S^C steps
    rest = 0.0
    for c in range(1, n_ch):
        rest += h[c, 0]
    t_on = np.zeros((n_ch, n_sites))
    t_on_c = np.zeros((n_ch, n_sites))
    acc = np.zeros((n_ch, n_sites))
    acc_c = np.zeros((n_ch, n_sites))
    s, s_c = 0.0, 0.0
    n_states = n_sites ** n_ch
    for t in range(n_states):
        if t > 0:
            # find the lowest channel that can move in its current direction (reflected Gray code)
            c = 0
            while True:
                nxt = digit[c] + direction[c]
                if 0 <= nxt < n_sites:
                    break
                direction[c] = -direction[c]
                c += 1
            old = digit[c]
            d_acc = (s - t_on[c, old]) - (s_c - t_on_c[c, old])
            acc[c, old], acc_c[c, old] = _kahan_add(acc[c, old], acc_c[c, old], d_acc)
            digit[c] = nxt
            if c > 0:
                rest = 0.0
                for c2 in range(1, n_ch):
                    rest += h[c2, digit[c2]]
            t_on[c, nxt] = s
            t_on_c[c, nxt] = s_c
        s, s_c = _kahan_add(s, s_c, math.exp(h[0, digit[0]] + rest - a_max))
    for c in range(n_ch):
        cur = digit[c]
        d_acc = (s - t_on[c, cur]) - (s_c - t_on_c[c, cur])
        acc[c, cur], acc_c[c, cur] = _kahan_add(acc[c, cur], acc_c[c, cur], d_acc)
    marg = np.empty((n_ch, n_sites))
    for c in range(n_ch):
        for s_ in range(n_sites):
            marg[c, s_] = (acc[c, s_] - acc_c[c, s_]) / (s - s_c)
    return a_max + math.log(s - s_c), marg


@njit(cache=True, parallel=True)
def enumerate_onehot(h):
    """Per sample of h (N, C, S): exact log Z and one-hot marginals over all S^C configurations."""
    n_batch, n_ch, n_sites = h.shape
    log_z = np.empty(n_batch)
    prob = np.empty((n_batch, n_ch, n_sites))
    for n in prange(n_batch):
        lz, m = _enumerate_onehot(h[n])
        log_z[n] = lz
        prob[n] = m
    return log_z, prob
