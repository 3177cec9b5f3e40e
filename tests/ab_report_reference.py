#!/usr/bin/env python3
"""Independent reference values for tests/ab_report_test.cc (the numbers marked "mpmath").

Computed with mpmath (pip install mpmath) at 30 significant digits, by different means than
analysis/stats.cc: mpmath's own betainc for the t CDF, erfinv for the normal quantile,
findroot for t quantiles. Run: python3 tests/ab_report_reference.py
"""
from mpmath import mp, mpf, betainc, sqrt, erfc, erfinv, log, exp, findroot, ncdf

mp.dps = 30


def tcdf(t, v):
    t, v = mpf(t), mpf(v)
    tail = betainc(v / 2, mpf(1) / 2, 0, v / (v + t * t), regularized=True) / 2
    return 1 - tail if t > 0 else tail


def tq(p, v, start=2):
    return findroot(lambda t: tcdf(t, v) - mpf(p), start)


def nq(p):
    return sqrt(2) * erfinv(2 * mpf(p) - 1)


print("t quantile 0.975, df 10  ", tq('0.975', 10))
print("t quantile 0.975, df 1   ", tq('0.975', 1, 12))
print("t quantile 0.995, df 30  ", tq('0.995', 30))
print("t quantile 0.975, df 2.5 ", tq('0.975', mpf('2.5')))
print("t cdf 2, df 5            ", tcdf(2, 5))
print("t cdf -1.5, df 7.3       ", tcdf(mpf('-1.5'), mpf('7.3')))
print("t cdf 1.96, df 40000     ", tcdf(mpf('1.96'), 40000))
print("two-sided p 25, df 40000 ", betainc(20000, mpf(1) / 2, 0, mpf(40000) / (40000 + 625), regularized=True))
print("normal quantile 0.975    ", nq('0.975'))
print("normal quantile 0.3      ", nq('0.3'))
print("normal quantile 1e-10    ", nq('1e-10'))
print("normal quantile 1e-300   ", findroot(lambda z: log(ncdf(z)) - log(mpf('1e-300')), -37))
print("I_0.999(20000, 0.5)      ", betainc(20000, mpf('0.5'), 0, mpf('0.999'), regularized=True))

# Two proportions: 150/1000 (treatment) against 120/1000 (control).
xt, nt, xc, nc = 150, 1000, 120, 1000
pt, pc = mpf(xt) / nt, mpf(xc) / nc
z975 = nq('0.975')
d = pt - pc
se = sqrt(pt * (1 - pt) / nt + pc * (1 - pc) / nc)
print("Wald interval            ", d - z975 * se, d + z975 * se)
pp = mpf(xt + xc) / (nt + nc)
z = d / sqrt(pp * (1 - pp) * (mpf(1) / nt + mpf(1) / nc))
print("pooled z, p              ", z, erfc(abs(z) / sqrt(2)))
sel = sqrt((pt * (1 - pt) / nt) / pt**2 + (pc * (1 - pc) / nc) / pc**2)
print("relative lift, interval  ", pt / pc - 1, exp(log(pt / pc) - z975 * sel) - 1, exp(log(pt / pc) + z975 * sel) - 1)
n, x = mpf(nc), mpf(xc)
z2 = z975**2
c = (x + z2 / 2) / (n + z2)
h = z975 / (n + z2) * sqrt(x * (n - x) / n + z2 / 4)
print("Wilson 120/1000          ", c - h, c + h)

# Welch.
A = [mpf(s) for s in "19.5 22.1 20.3 25.0 23.4 21.8 24.6 20.9".split()]
B = [mpf(s) for s in "18.2 19.9 17.5 21.0 20.1 18.8".split()]


def mean_var(v):
    m = sum(v) / len(v)
    return m, sum((a - m) ** 2 for a in v) / (len(v) - 1)


ma, va = mean_var(A)
mb, vb = mean_var(B)
sa, sb = va / len(A), vb / len(B)
se = sqrt(sa + sb)
t = (ma - mb) / se
df = (sa + sb) ** 2 / (sa**2 / (len(A) - 1) + sb**2 / (len(B) - 1))
print("Welch t, df, p           ", t, df, 2 * (1 - tcdf(t, df)))
q = tq('0.975', df)
print("Welch interval           ", ma - mb - q * se, ma - mb + q * se)
qa = tq('0.975', len(A) - 1)
print("t interval of A's mean   ", ma - qa * sqrt(va / len(A)), ma + qa * sqrt(va / len(A)))


# Sample sizes (pooled-under-H0 formula; see analysis/sample_size.h).
def n_prop(p0, p1, alpha, power):
    za, zb, pb = nq(1 - mpf(alpha) / 2), nq(mpf(power)), (p0 + p1) / 2
    return (za * sqrt(2 * pb * (1 - pb)) + zb * sqrt(p0 * (1 - p0) + p1 * (1 - p1))) ** 2 / (p1 - p0) ** 2


print("n, 0.10 -> 0.12          ", n_prop(mpf('0.10'), mpf('0.12'), '0.05', '0.8'))
print("n, 0.0057 +50%, 2 arms   ", n_prop(mpf('0.0057'), mpf('0.0057') * mpf('1.5'), '0.05', '0.8'))
print("n, 0.0057 +50%, 3 arms   ", n_prop(mpf('0.0057'), mpf('0.0057') * mpf('1.5'), '0.025', '0.8'))
print("n, means sd 1 delta 0.5  ", 2 * (nq('0.975') + nq('0.8')) ** 2 / mpf('0.25'))
