"""``python -m interp.lorsa`` / ``torchrun --nproc_per_node=N -m interp.lorsa``: train a Lorsa (see interp.lorsa.train.main)."""

from interp.lorsa.train import main

if __name__ == "__main__":
    main()
