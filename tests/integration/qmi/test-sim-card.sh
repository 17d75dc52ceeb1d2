#!/bin/sh
# cp-qmi-sim's card profiles against real qmicli and raw UIM APDUs: EF.DIR
# with the full USIM and ISIM AIDs, selection by full and unique partial
# AID, SELECT's P2 (FCP or nothing), the file sizes of each card, READ
# BINARY's answers to a wrong Le and a bad offset, and the key copies a
# writer of ADF.USIM alone leaves behind (docs/simulators.md).
set -u
sim=$1 qmicli=$2 apdu=$3
. "$(dirname "$0")/sim-lib.sh"

USIM=A0000000871002FFFFFFFF8907090000
ISIM=A0000000871004FFFFFFFF8907090000
K=000102030405060708090a0b0c0d0e0f
OPC=0f0e0d0c0b0a09080706050403020100
OLD_KEY=14$K$OPC
NEW_KEY=14ffeeddccbbaa9988776655443322110000112233445566778899aabbccddeeff
ADM1=3132333435363738

# an unknown card is refused with the list
out=$("$sim" --pty "$dir/x" --card sysmoISIM-SJA9 2>&1) && fail "unknown card accepted"
echo "$out" | grep -q "sysmoISIM-SJA2, sysmoISIM-SJA5" || fail "no card list: $out"

# check_card CARD AD_SIZE KEY_SIZE: what every profile must show
check_card() {
	card=$1 ad=$2 key=$3
	start_sim --card "$card"
	[ "$(dump_get card)" = "$card" ] || fail "$card: dump says $(dump_get card)"
	out=$(q --uim-read-record="record-number=1,record-length=43,file=0x3F00-0x2F00")
	echo "$out" | tr -d ' \t\n' | grep -q "4F:10:A0:00:00:00:87:10:02:FF:FF:FF:FF:89:07:09:00:00:50:05:55:53:69:6D:31" ||
		fail "$card: EF.DIR record 1 (USIM): $out"
	out=$(q --uim-read-record="record-number=2,record-length=43,file=0x3F00-0x2F00")
	echo "$out" | tr -d ' \t\n' | grep -q "4F:10:A0:00:00:00:87:10:04:FF:FF:FF:FF:89:07:09:00:00:50:05:49:53:69:6D:31" ||
		fail "$card: EF.DIR record 2 (ISIM): $out"
	out=$(q --uim-read-record="record-number=9,record-length=43,file=0x3F00-0x2F00")
	echo "$out" | grep -q "SW2: '0x83'" || fail "$card: EF.DIR record 9 exists: $out"
	out=$(q --uim-get-card-status)
	echo "$out" | grep -q "A0:00:00:00:87:10:02:FF:FF:FF:FF:89:07:09:00:00" || fail "$card: card status AID: $out"
	out=$(q --uim-get-file-attributes=0x3F00,0x7FFF,0xAF20)
	echo "$out" | grep -q "File size: $key\$" || fail "$card: EF.USIM_AUTH_KEY size: $out"
	echo "$out" | grep -q "Read security attributes: (single) adm" || fail "$card: key readable: $out"
	out=$(q --uim-get-file-attributes=0x3F00,0x7FFF,0x6FAD)
	echo "$out" | grep -q "File size: $ad\$" || fail "$card: EF.AD size: $out"
	out=$(q --uim-get-file-attributes=0x3F00,0xA515,0x6F20)
	echo "$out" | grep -q "File size: 33\$" || fail "$card: EF.SIM_AUTH_KEY size: $out"
	out=$(q --uim-read-transparent=0x3F00,0xA515,0x6F20)
	echo "$out" | grep -q "SW1: '0x69'" || fail "$card: 2G key readable without ADM1: $out"
	# every copy of the key starts as the same K and OPc
	for ef in ef-usim-auth-key ef-usim-auth-key-2g ef-sim-auth-key ef-isim-auth-key; do
		case $(dump_get $ef) in $OLD_KEY*) ;; *) fail "$card: $ef: $(dump_get $ef)";; esac
	done
	[ "$(dump_get ef-usim-auth-key | wc -c)" -eq $((2 * key + 1)) ] || fail "$card: dumped key size"

	# full AID, unique partial AID, the RID alone (USIM and ISIM share it)
	sz=$(printf %02X "$key")
	out=$(a open:$USIM open:A0000000871002 open:A000000087 open:$ISIM \
		apdu:1:01A4000402AF20 apdu:1:01A4000002AF20 apdu:1:01A4000C02AF20 \
		apdu:1:01B0000000 apdu:1:0120000A08$ADM1 apdu:1:01B0000000 apdu:1:01B00000$sz \
		apdu:1:01B0000400 apdu:1:01B000${sz}00 apdu:1:01A4040410$USIM close:2)
	set -- $(echo "$out" | tr ' ' '_')
	[ "$1" = open_channel=1_sw=9000 ] || fail "$card: open by full AID: $1"
	[ "$2" = open_channel=2_sw=9000 ] || fail "$card: open by partial AID: $2"
	case $3 in open_error=*_sw=6A82) ;; *) fail "$card: open by an ambiguous RID: $3";; esac
	[ "$4" = open_channel=3_sw=9000 ] || fail "$card: open ISIM: $4"
	case $5 in apdu_62*8302AF20*8002$(printf %04X "$key")*9000) ;; *) fail "$card: SELECT P2=04 FCP: $5";; esac
	# the template's length byte counts exactly the bytes that follow
	fcp=${5#apdu_}; fcp=${fcp%9000}
	[ $((0x$(echo "$fcp" | cut -c3-4) * 2 + 4)) -eq ${#fcp} ] || fail "$card: FCP length byte: $fcp"
	[ "$6" = apdu_6A86 ] || fail "$card: SELECT P2=00: $6"
	[ "$7" = apdu_9000 ] || fail "$card: SELECT P2=0C: $7"
	[ "$8" = apdu_6982 ] || fail "$card: READ of the key without ADM1: $8"
	[ "$9" = apdu_9000 ] || fail "$card: VERIFY ADM1: $9"
	shift 9
	READ_LE00=$1 READ_EXACT=$2 READ_OFF4=$3 READ_PAST=$4
	[ "$READ_EXACT" = "apdu_$(dump_get ef-usim-auth-key | tr a-f A-F)9000" ] || fail "$card: READ Le=size: $READ_EXACT"
	[ "$READ_PAST" = apdu_6B00 ] || fail "$card: READ past the end: $READ_PAST"
	case $5 in apdu_62*82027821*8410${USIM}*9000) ;; *) fail "$card: SELECT ADF.USIM by AID, P2=04: $5";; esac
	[ "$6" = close_ok ] || fail "$card: close: $6"
}

# the default card is the SJA5 (TUAK-sized key files)
start_sim
[ "$(dump_get card)" = sysmoISIM-SJA5 ] || fail "default card: $(dump_get card)"
check_card sysmoISIM-SJA2 4 33
# Le=00 on the default (exact, a T=0 card): 6Cxx with the file's size
[ "$READ_LE00" = apdu_6C21 ] || fail "default READ Le=00, SJA2: $READ_LE00"
check_card sysmoISIM-SJA5 5 67
[ "$READ_LE00" = apdu_6C43 ] || fail "default READ Le=00, SJA5: $READ_LE00"
# lenient, the historical default: the whole file with 9000
start_sim --card sysmoISIM-SJA2 --read-le lenient
out=$(a open:$USIM apdu:1:0120000A08$ADM1 apdu:1:01A4000C02AF20 apdu:1:01B0000000)
set -- $(echo "$out" | tr ' ' '_')
[ "$4" = "apdu_$(dump_get ef-usim-auth-key | tr a-f A-F)9000" ] || fail "lenient READ Le=00: $4"

# a T=0 card answers 6Cxx with the length there is
start_sim --card sysmoISIM-SJA2 --read-le exact
out=$(a open:$USIM apdu:1:0120000A08$ADM1 apdu:1:01A4000C02AF20 apdu:1:01B0000000 apdu:1:01B0000440 \
	apdu:1:01B0000410 apdu:1:01A4000C026F07 apdu:1:01B0000000)
set -- $(echo "$out" | tr ' ' '_')
[ "$4" = apdu_6C21 ] || fail "exact: READ Le=00: $4"
[ "$5" = apdu_6C1D ] || fail "exact: READ Le past the end: $5"
case $6 in apdu_????????????????????????????????9000) ;; *) fail "exact: READ Le=16 at 4: $6";; esac
[ "$8" = apdu_6C09 ] || fail "exact: READ EF.IMSI Le=00: $8"
# an ISO 7816-4 card on T=1 sends what there is with 6282
start_sim --card sysmoISIM-SJA5 --read-le eof
out=$(a open:$USIM apdu:1:01A4000C026F07 apdu:1:01B0000000 apdu:1:01B0000009)
set -- $(echo "$out" | tr ' ' '_')
[ "$3" = apdu_0809101010325476986282 ] || fail "eof: READ Le=00: $3"
[ "$4" = apdu_0809101010325476989000 ] || fail "eof: READ Le=9: $4"

# A writer of ADF.USIM alone leaves the 2G and ISIM keys as they were;
# DF.SYSTEM's EF.SIM_AUTH_KEY and EF.USIM_AUTH_KEY_2G are one file.
for card in sysmoISIM-SJA2 sysmoISIM-SJA5; do
	start_sim --card $card
	out=$(a apdu:0:0020000A08$ADM1 apdu:0:00A4000C027FFF apdu:0:00A4000C02AF20 apdu:0:00D6000021$NEW_KEY)
	[ "$(echo "$out" | tr '\n' ' ')" = "apdu 9000 apdu 9000 apdu 9000 apdu 9000 " ] || fail "$card: USIM key write: $out"
	case $(dump_get ef-usim-auth-key) in $NEW_KEY*) ;; *) fail "$card: USIM key not written";; esac
	for ef in ef-usim-auth-key-2g ef-sim-auth-key ef-isim-auth-key; do
		case $(dump_get $ef) in $OLD_KEY*) ;; *) fail "$card: $ef changed: $(dump_get $ef)";; esac
	done
	out=$(a apdu:0:00A4000C023F00 apdu:0:00A4000C02A515 apdu:0:00A4000C026F20 apdu:0:00D6000021$NEW_KEY)
	[ "$(echo "$out" | tr '\n' ' ')" = "apdu 9000 apdu 9000 apdu 9000 apdu 9000 " ] || fail "$card: 2G key write: $out"
	[ "$(dump_get ef-sim-auth-key)" = "$NEW_KEY" ] || fail "$card: EF.SIM_AUTH_KEY not written"
	[ "$(dump_get ef-usim-auth-key-2g)" = "$NEW_KEY" ] || fail "$card: EF.USIM_AUTH_KEY_2G is not the same file"
	case $(dump_get ef-isim-auth-key) in $OLD_KEY*) ;; *) fail "$card: ISIM key changed";; esac
	out=$(a open:$ISIM apdu:1:01A4000C02AF20 apdu:1:01D6000021$NEW_KEY)
	[ "$(echo "$out" | tr '\n' ' ')" = "open channel=1 sw=9000 apdu 9000 apdu 9000 " ] || fail "$card: ISIM key write: $out"
	case $(dump_get ef-isim-auth-key) in $NEW_KEY*) ;; *) fail "$card: ISIM key not written";; esac
done
echo "qmi-sim-card: all checks passed"
