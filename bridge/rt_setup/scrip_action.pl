# Rollout bridge scrip action: POST the change to the bridge, signed the Standard Webhooks way.
# The body names the field that changed (or Status), its new and old value (for a multi-value
# field the one value added or removed), who changed it and when (Unix seconds).
# Configured in RT's site config, never here:
#   Set($RolloutBridgeURL, 'https://bridge.example.org/hooks/rt');
#   Set($RolloutBridgeSecret, 'whsec_...');       # or $RolloutBridgeSecretFile
#   Set($RolloutBridgeTimeout, 5);                # seconds, optional
# It never blocks or fails the ticket update: every error is logged and the action returns 1.
# The bridge reconciles from RT's history whatever this POST did not deliver.
my $ok = eval {
    require LWP::UserAgent;
    require JSON;
    require Digest::SHA;
    require MIME::Base64;

    my $url = RT->Config->Get('RolloutBridgeURL');
    unless ($url) {
        RT->Logger->warning('Rollout bridge: $RolloutBridgeURL is not set; change not sent');
        return 1;
    }
    my $secret = RT->Config->Get('RolloutBridgeSecret');
    if ( !$secret && ( my $file = RT->Config->Get('RolloutBridgeSecretFile') ) ) {
        if ( open my $fh, '<', $file ) {
            local $/;
            $secret = <$fh>;
            close $fh;
            $secret =~ s/\s+\z//;
        } else {
            RT->Logger->error("Rollout bridge: cannot read \$RolloutBridgeSecretFile: $!");
        }
    }
    unless ($secret) {
        RT->Logger->error('Rollout bridge: no $RolloutBridgeSecret; change not sent');
        return 1;
    }

    my $txn    = $self->TransactionObj;
    my $ticket = $self->TicketObj;
    my $field  = 'Status';    # a change of the ticket's status, else of a custom field
    if ( $txn->Type eq 'CustomField' ) {
        my $cf = RT::CustomField->new( RT->SystemUser );
        $cf->Load( $txn->Field || 0 );
        $field = $cf->Name;
    }
    my $emergency = $ticket->FirstCustomFieldValue('EmergencyRelease') || 'No';
    my $body = JSON->new->canonical->utf8->encode({
        ticket_id      => $ticket->id + 0,
        transaction_id => $txn->id + 0,
        field          => $field,
        current        => defined $txn->NewValue ? $txn->NewValue : '',
        previous       => defined $txn->OldValue ? $txn->OldValue : '',
        emergency      => ( $emergency eq 'Yes' ? JSON::true() : JSON::false() ),
        actor          => $txn->CreatorObj->Name,
        changed_at     => $txn->CreatedObj->Unix + 0,
    });

    my $key = $secret;
    $key =~ s/^whsec_//;
    $key = MIME::Base64::decode_base64($key);
    my $msg_id    = '' . $txn->id;
    my $timestamp = time();
    my $signature = Digest::SHA::hmac_sha256_base64( "$msg_id.$timestamp.$body", $key );
    $signature .= '=' while length($signature) % 4;    # Digest::SHA leaves off the padding

    my $ua = LWP::UserAgent->new(
        timeout => RT->Config->Get('RolloutBridgeTimeout') || 5,
        agent   => 'rt-rollout-scrip/1',
    );
    my $response = $ua->post(
        $url,
        'Content-Type'      => 'application/json',
        'webhook-id'        => $msg_id,
        'webhook-timestamp' => $timestamp,
        'webhook-signature' => "v1,$signature",
        Content             => $body,
    );
    if ( $response->is_success ) {
        RT->Logger->info( "Rollout bridge: sent transaction $msg_id of ticket "
              . $ticket->id . ': ' . $response->code );
    } else {
        RT->Logger->warning( "Rollout bridge: transaction $msg_id of ticket "
              . $ticket->id . ' not delivered: ' . $response->status_line );
    }
    1;
};
RT->Logger->error("Rollout bridge: scrip failed: $@") unless $ok;
return 1;
