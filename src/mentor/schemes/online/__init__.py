"""Online learning schemes (survey §5.1): peers trained together in one loop, each teaching the others.

One file per scheme (``dml``, ``one``, ``ffl``, ``pcl``, ``okddip``, ``kdcl``, ``afd``, ``mcl``, ``afi``);
``peers`` holds what several of them share (parameter checks, mutual KL, ensembles, distortions, mean
teachers) and ``branches`` splits one ``nn.Sequential`` into a shared trunk and copied branches.
"""
