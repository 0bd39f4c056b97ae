"""Environments, machines, groups, maintenance, sharing and access (R1-R19, R24): the machines a run can go to."""
